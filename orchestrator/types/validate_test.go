package types_test

import (
	"errors"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

func validNode() *types.Node { return typestest.Node("node-1") }

func svc(mut func(*types.Service)) types.Record {
	s := typestest.Service("svc-1", "web")
	mut(s)
	return s
}

func ctr(mut func(*types.Container)) types.Record {
	c := typestest.Container("c-1", "svc-1", "node-1")
	mut(c)
	return c
}

func cluster(mut func(*types.Cluster)) types.Record {
	c := typestest.Cluster("cluster-1")
	mut(c)
	return c
}

func node(mut func(*types.Node)) types.Record {
	n := validNode()
	mut(n)
	return n
}

var _ = Describe("Validate", func() {
	DescribeTable("accepts valid records",
		func(r types.Record) { Expect(r.Validate()).To(Succeed()) },
		Entry("node", validNode()),
		Entry("service", typestest.Service("svc-1", "web")),
		Entry("large service", typestest.LargeService("svc-1", "web", 2048)),
		Entry("global service", svc(func(s *types.Service) { s.Mode = types.ModeGlobal; s.Replicas = 0 })),
		Entry("zero replicas", svc(func(s *types.Service) { s.Replicas = 0 })),
		Entry("image with registry and digest", svc(func(s *types.Service) {
			s.Image = "registry.example.com:5000/team/app@sha256:" + strings.Repeat("a", 64)
		})),
		Entry("63-character name", svc(func(s *types.Service) { s.Name = strings.Repeat("a", 63) })),
		Entry("unpublished port", svc(func(s *types.Service) { s.Ports[0].HostPort = 0 })),
		Entry("port 65535", svc(func(s *types.Service) { s.Ports[0].HostPort = 65535 })),
		Entry("read-only volume", svc(func(s *types.Service) {
			s.Volumes = []*types.VolumeMount{{Source: "db-data", Target: "/var/lib/data", ReadOnly: true}}
		})),
		Entry("http health check", svc(func(s *types.Service) {
			s.HealthCheck = &types.HealthCheck{Type: types.HealthCheckHTTP, Path: "/healthz", Port: 80, Interval: time.Second, Retries: 3}
		})),
		Entry("container", typestest.Container("c-1", "svc-1", "node-1")),
		Entry("container with its own process", ctr(func(c *types.Container) {
			c.Command, c.Args, c.WorkingDir, c.User = []string{"/bin/httpd"}, []string{"-f", ""}, "/var/www", "app:1000"
		})),
		Entry("service with a numeric user", svc(func(s *types.Service) { s.User, s.Args = "1000", []string{"sleep", "60"} })),
		Entry("unscheduled container", typestest.Container("c-1", "svc-1", "")),
		Entry("secret", typestest.Secret("sec-1", "db-password")),
		Entry("secret of 1 MiB plaintext sealed", &types.Secret{ID: "s", Name: "big", Data: make([]byte, types.MaxSecretSize+28)}),
		Entry("volume", typestest.Volume("vol-1", "db-data", "node-1")),
		Entry("unplaced volume", typestest.Volume("vol-1", "db-data", "")),
		Entry("network", typestest.Network("net-1", "frontend-net")),
		Entry("cluster", typestest.Cluster("cluster-1")),
		Entry("cluster CA with a trailing newline", cluster(func(c *types.Cluster) { c.CACert = append(c.CACert, '\n') })),
	)

	DescribeTable("rejects invalid records, naming the field and the fix",
		func(r types.Record, field, message string) {
			err := r.Validate()
			Expect(errors.Is(err, types.ErrInvalid)).To(BeTrue(), "%v", err)
			var inv *types.InvalidError
			Expect(errors.As(err, &inv)).To(BeTrue())
			var fields []string
			for _, f := range inv.Fields {
				fields = append(fields, f.Field)
			}
			Expect(fields).To(ContainElement(field))
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("service name with upper case", svc(func(s *types.Service) { s.Name = "Web" }), "Name", "lowercase letters"),
		Entry("service name with underscore", svc(func(s *types.Service) { s.Name = "my_web" }), "Name", "not a valid name"),
		Entry("service name starting with -", svc(func(s *types.Service) { s.Name = "-web" }), "Name", "starting and ending"),
		Entry("service name of 64 characters", svc(func(s *types.Service) { s.Name = strings.Repeat("a", 64) }), "Name", "1-63"),
		Entry("empty service name", svc(func(s *types.Service) { s.Name = "" }), "Name", "not a valid name"),
		Entry("empty ID", svc(func(s *types.Service) { s.ID = "" }), "ID", "not a valid ID"),
		Entry("relative working dir", svc(func(s *types.Service) { s.WorkingDir = "www" }), "WorkingDir", "start it with /"),
		Entry("user with a space", svc(func(s *types.Service) { s.User = "app user" }), "User", "NAME, UID"),
		Entry("user with two colons", ctr(func(c *types.Container) { c.User = "1:2:3" }), "User", "UID:GID"),
		Entry("command with an empty program", ctr(func(c *types.Container) { c.Command = []string{""} }), "Command[0]", "name the program"),
		Entry("argument with a NUL byte", ctr(func(c *types.Container) { c.Args = []string{"a\x00b"} }), "Args[0]", "NUL"),
		Entry("ID with a slash", svc(func(s *types.Service) { s.ID = "a/b" }), "ID", "not a valid ID"),
		Entry("empty image", svc(func(s *types.Service) { s.Image = "" }), "Image", "give an image reference"),
		Entry("image with upper case", svc(func(s *types.Service) { s.Image = "NGINX:latest" }), "Image", "not a valid image reference"),
		Entry("image with bad tag", svc(func(s *types.Service) { s.Image = "nginx:bad tag" }), "Image", "not a valid image reference"),
		Entry("negative replicas", svc(func(s *types.Service) { s.Replicas = -1 }), "Replicas", "must be 0 or more"),
		Entry("replicas on a global service", svc(func(s *types.Service) { s.Mode = types.ModeGlobal }), "Replicas", "global service"),
		Entry("unknown mode", svc(func(s *types.Service) { s.Mode = "daemon" }), "Mode", "use one of replicated, global"),
		Entry("unknown strategy", svc(func(s *types.Service) { s.DeployStrategy = "big-bang" }), "DeployStrategy", "rolling, blue-green, canary"),
		Entry("container port 0", svc(func(s *types.Service) { s.Ports[0].ContainerPort = 0 }), "Ports[0].ContainerPort", "1-65535"),
		Entry("host port 65536", svc(func(s *types.Service) { s.Ports[0].HostPort = 65536 }), "Ports[0].HostPort", "1-65535"),
		Entry("negative host port", svc(func(s *types.Service) { s.Ports[0].HostPort = -80 }), "Ports[0].HostPort", "1-65535"),
		Entry("unknown protocol", svc(func(s *types.Service) { s.Ports[0].Protocol = "sctp" }), "Ports[0].Protocol", "tcp, udp"),
		Entry("host port published twice", svc(func(s *types.Service) {
			s.Ports = append(s.Ports, &types.PortMapping{ContainerPort: 81, HostPort: 8080, Protocol: types.ProtocolTCP})
		}), "Ports[1].HostPort", "publish each host port once"),
		Entry("relative mount path", svc(func(s *types.Service) {
			s.Volumes = []*types.VolumeMount{{Source: "db-data", Target: "data"}}
		}), "Volumes[0].Target", "absolute path"),
		Entry("unclean mount path", svc(func(s *types.Service) {
			s.Volumes = []*types.VolumeMount{{Source: "db-data", Target: "/data/../etc"}}
		}), "Volumes[0].Target", `use "/etc"`),
		Entry("two volumes on one path", svc(func(s *types.Service) {
			s.Volumes = []*types.VolumeMount{{Source: "a", Target: "/data"}, {Source: "b", Target: "/data"}}
		}), "Volumes[1].Target", "one volume per path"),
		Entry("env without =", svc(func(s *types.Service) { s.Env = []string{"JUSTKEY"} }), "Env[0]", "KEY=VALUE"),
		Entry("exec check without command", svc(func(s *types.Service) {
			s.HealthCheck = &types.HealthCheck{Type: types.HealthCheckExec}
		}), "HealthCheck.Command", "needs a command"),
		Entry("http check without path", svc(func(s *types.Service) {
			s.HealthCheck = &types.HealthCheck{Type: types.HealthCheckHTTP, Port: 80}
		}), "HealthCheck.Path", "must start with /"),
		Entry("unknown restart condition", svc(func(s *types.Service) { s.RestartPolicy.Condition = "sometimes" }), "RestartPolicy.Condition", "none, on-failure, always"),
		Entry("reservation above limit", svc(func(s *types.Service) {
			s.Resources = &types.ResourceRequirements{MemoryLimit: 100, MemoryReservation: 200}
		}), "Resources.MemoryReservation", "more than the limit"),
		Entry("canary weight above 100", svc(func(s *types.Service) { s.UpdateConfig.CanaryWeight = 101 }), "UpdateConfig.CanaryWeight", "0-100"),
		Entry("node role", node(func(n *types.Node) { n.Role = "boss" }), "Role", "manager, worker"),
		Entry("node status", node(func(n *types.Node) { n.Status = "sleeping" }), "Status", "ready, down, draining, unknown"),
		Entry("node availability", node(func(n *types.Node) { n.Availability = "" }), "Availability", "active, pause, drain"),
		Entry("container state", ctr(func(c *types.Container) { c.ActualState = "zombie" }), "ActualState", "pending, running, failed, complete, shutdown"),
		Entry("container health", ctr(func(c *types.Container) { c.HealthStatus = "meh" }), "HealthStatus", "healthy, unhealthy, unknown"),
		Entry("container without service", ctr(func(c *types.Container) { c.ServiceID = "" }), "ServiceID", "not a valid ID"),
		Entry("empty secret", &types.Secret{ID: "s", Name: "pw"}, "Data", "is empty"),
		Entry("secret over 1 MiB", &types.Secret{ID: "s", Name: "pw", Data: make([]byte, types.MaxSecretSize+types.MaxSealOverhead+1)}, "Data", "at most 1 MiB"),
		Entry("volume mount path", &types.Volume{ID: "v", Name: "data", Driver: "local", MountPath: "rel"}, "MountPath", "absolute path"),
		Entry("volume without driver", &types.Volume{ID: "v", Name: "data"}, "Driver", "not a valid name"),
		Entry("network subnet", &types.Network{ID: "n", Name: "net", Driver: "wireguard", Subnet: "10.0.1.0"}, "Subnet", "CIDR"),
		Entry("cluster without ID", cluster(func(c *types.Cluster) { c.ID = "" }), "ID", "not a valid ID"),
		Entry("cluster without CA", cluster(func(c *types.Cluster) { c.CACert = nil }), "CACert", "store the cluster CA's certificate"),
		Entry("cluster CA not PEM", cluster(func(c *types.Cluster) { c.CACert = []byte("MIIBJDCB") }), "CACert", "is not PEM"),
		Entry("cluster CA key stored", cluster(func(c *types.Cluster) {
			c.CACert = []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
		}), "CACert", "never its key"),
		Entry("cluster CA followed by its key", cluster(func(c *types.Cluster) {
			c.CACert = append(c.CACert, "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"...)
		}), "CACert", "the CA's certificate alone"),
		Entry("cluster digest malformed", cluster(func(c *types.Cluster) { c.CADigest = "sha256:ABC" }), "CADigest", "64 lowercase hex digits"),
		Entry("cluster digest of another CA", cluster(func(c *types.Cluster) { c.CADigest = "sha256:" + strings.Repeat("0", 64) }), "CADigest", "is not the digest of CACert"),
		Entry("cluster without worker token", cluster(func(c *types.Cluster) { c.WorkerToken = "" }), "WorkerToken", "worker join token"),
		Entry("cluster without manager token", cluster(func(c *types.Cluster) { c.ManagerToken = "" }), "ManagerToken", "manager join token"),
		Entry("cluster with one token for both roles", cluster(func(c *types.Cluster) { c.ManagerToken = c.WorkerToken }), "ManagerToken", "a different token for each role"),
		Entry("cluster salt too short", cluster(func(c *types.Cluster) { c.EncryptionSalt = c.EncryptionSalt[:16] }), "EncryptionSalt", "is 16 bytes: use exactly 32"),
		Entry("cluster without salt", cluster(func(c *types.Cluster) { c.EncryptionSalt = nil }), "EncryptionSalt", "is 0 bytes"),
		Entry("gateway outside subnet", &types.Network{ID: "n", Name: "net", Driver: "wireguard", Subnet: "10.0.1.0/24", Gateway: "10.0.2.1"}, "Gateway", "outside the subnet"),
	)

	It("reports every problem at once", func() {
		err := svc(func(s *types.Service) { s.Name = "Bad"; s.Replicas = -2; s.Image = "" }).Validate()
		var inv *types.InvalidError
		Expect(errors.As(err, &inv)).To(BeTrue())
		Expect(inv.Fields).To(HaveLen(3))
		Expect(err.Error()).To(HavePrefix(`types: invalid service "Bad": `))
	})
})

var _ = Describe("ValidateSecretData", func() {
	DescribeTable("checks the plaintext size",
		func(size int, ok bool, message string) {
			err := types.ValidateSecretData(make([]byte, size))
			if ok {
				Expect(err).To(Succeed())
				return
			}
			Expect(errors.Is(err, types.ErrInvalid)).To(BeTrue())
			Expect(err.Error()).To(ContainSubstring(message))
		},
		Entry("empty", 0, false, "is empty"),
		Entry("one byte", 1, true, ""),
		Entry("exactly 1 MiB", types.MaxSecretSize, true, ""),
		Entry("1 MiB + 1", types.MaxSecretSize+1, false, "more than the limit of 1048576 (1 MiB)"),
	)
})

var _ = Describe("ParseSize", func() {
	DescribeTable("reads bytes with an optional binary unit",
		func(in string, want int64) { Expect(types.ParseSize(in)).To(Equal(want)) },
		Entry("bytes", "512", int64(512)),
		Entry("K", "4K", int64(4<<10)),
		Entry("MiB", "64MiB", int64(64<<20)),
		Entry("Gb, lower case", "1gb", int64(1<<30)),
		Entry("T with spaces", " 2T ", int64(2<<40)),
	)
	DescribeTable("refuses what is not a size",
		func(in string) {
			_, err := types.ParseSize(in)
			Expect(err).To(MatchError(types.ErrInvalid))
			Expect(err).To(MatchError(ContainSubstring("e.g. 64M or 1G")))
		},
		Entry("empty", ""), Entry("a word", "lots"), Entry("an unknown unit", "64Q"), Entry("too large", "9999999999T"), Entry("negative", "-1"),
	)
})
