package api_test

import (
	"context"
	"crypto/subtle"
	"io"
	"log"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/api"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

func (b *fakeBackend) SecretMatches(_ context.Context, s *types.Secret, plaintext []byte) (bool, error) {
	if err := b.gate(); err != nil {
		return false, err
	}
	stored, err := fakeKeys.Open(types.SealedFor(s.ID, s.CurrentVersion()), s.Data)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare(stored, plaintext) == 1, nil
}

// applyBackend records the commands the handler applies, and can break a
// batch: it is applied with a last command that fails, so the state
// machine must store none of it.
type applyBackend struct {
	*fakeBackend
	mu         sync.Mutex
	applied    []fsm.Command
	breakBatch bool
}

func (b *applyBackend) Apply(ctx context.Context, cmd fsm.Command) error {
	b.mu.Lock()
	b.applied = append(b.applied, cmd)
	broken := b.breakBatch
	b.mu.Unlock()
	if batch, ok := cmd.(*fsm.Batch); ok && broken {
		cmd = &fsm.Batch{Commands: append(slices.Clone(batch.Commands), &fsm.DeleteService{ID: "no-such-service"})}
	}
	return b.fakeBackend.Apply(ctx, cmd)
}

func (b *applyBackend) commands() []fsm.Command {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.applied)
}

// startApplyServer serves the API on an applyBackend and returns an
// admin client of it.
func startApplyServer() (*applyBackend, *api.Client, func(role string) *api.Client) {
	GinkgoHelper()
	ca := newTestCA()
	b := &applyBackend{fakeBackend: newFakeBackend("m1")}
	h := api.NewHandler(api.HandlerConfig{Backend: b, Clock: &testClock{t: typestest.Epoch}, RoleOf: roleOf})
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = serverTLS(ca)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	DeferCleanup(srv.Close)
	as := func(role string) *api.Client {
		cert := ca.issue("someone", role)
		return newClient(ca.clientTLS(&cert), &waits{}, srv.Listener.Addr().String())
	}
	return b, as(api.RoleAdmin), as
}

// The three files of the storage guide's "YAML Configuration", verbatim.
const (
	guideVolume = `apiVersion: warren.io/v1
kind: Volume
metadata:
  name: db-data
spec:
  driver: local
  labels:
    env: production
    app: postgres
`
	guideSecret = `apiVersion: warren.io/v1
kind: Secret
metadata:
  name: db-password
spec:
  data:
    password: c2VjcmV0MTIz  # base64 encoded
`
	guideService = `apiVersion: warren.io/v1
kind: Service
metadata:
  name: postgres
spec:
  image: postgres:15
  replicas: 1
  volumes:
    - name: db-data
      mountPath: /var/lib/postgresql/data
  secrets:
    - db-password
  env:
    - name: POSTGRES_PASSWORD_FILE
      value: /run/secrets/db-password
`
)

// parse reads files (name, YAML, name, YAML, ...) as `warren apply -f`
// does, and fails the spec on a problem.
func parse(files ...string) []*api.Manifest {
	GinkgoHelper()
	var docs []*api.Manifest
	for i := 0; i+1 < len(files); i += 2 {
		m, err := api.ParseManifests(files[i], []byte(files[i+1]))
		Expect(err).NotTo(HaveOccurred())
		docs = append(docs, m...)
	}
	return docs
}

func guide() []*api.Manifest {
	GinkgoHelper()
	return parse("volume.yaml", guideVolume, "secret.yaml", guideSecret, "service.yaml", guideService)
}

// actions is each outcome as "kind/name action".
func actions(res *api.ApplyResult) []string {
	out := make([]string, len(res.Outcomes))
	for i, o := range res.Outcomes {
		out[i] = strings.ToLower(o.Kind) + "/" + o.Name + " " + o.Action
	}
	return out
}

var _ = Describe("Apply", func() {
	var (
		b      *applyBackend
		client *api.Client
		as     func(role string) *api.Client
		ctx    context.Context
	)
	BeforeEach(func() {
		ctx = context.Background()
		b, client, as = startApplyServer()
	})

	// stored is every record of the kinds apply writes.
	stored := func() ([]*types.Volume, []*types.Secret, []*types.Service) {
		GinkgoHelper()
		vols, err := b.store.ListVolumes()
		Expect(err).NotTo(HaveOccurred())
		secs, err := b.store.ListSecrets()
		Expect(err).NotTo(HaveOccurred())
		svcs, err := b.store.ListServices()
		Expect(err).NotTo(HaveOccurred())
		return vols, secs, svcs
	}

	It("creates the guide's volume, secret and service in one batch", func() {
		res, err := client.Apply(ctx, &api.ApplyRequest{Documents: guide()})
		Expect(err).NotTo(HaveOccurred())
		Expect(actions(res)).To(Equal([]string{"volume/db-data created", "secret/db-password created", "service/postgres created"}))

		cmds := b.commands()
		Expect(cmds).To(HaveLen(1))
		batch, ok := cmds[0].(*fsm.Batch)
		Expect(ok).To(BeTrue(), "one batch, not %T", cmds[0])
		Expect(batch.Commands).To(HaveLen(3))
		Expect(batch.Commands[0]).To(BeAssignableToTypeOf(&fsm.CreateVolume{}))
		Expect(batch.Commands[1]).To(BeAssignableToTypeOf(&fsm.CreateSecret{}))
		Expect(batch.Commands[2]).To(BeAssignableToTypeOf(&fsm.CreateService{}))

		vol, err := b.store.GetVolumeByName("db-data")
		Expect(err).NotTo(HaveOccurred())
		Expect(vol.Driver).To(Equal("local"))
		Expect(vol.Labels).To(Equal(map[string]string{"env": "production", "app": "postgres"}))
		Expect(vol.NodeID).To(BeEmpty(), "placed by its first task")

		sec, err := b.store.GetSecretByName("db-password")
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes[1].Version).To(Equal(1))
		Expect(fakeKeys.Open(types.SealedFor(sec.ID, 1), sec.Data)).To(Equal([]byte("secret123")), "the decoded value of its one key")

		svc, err := b.store.GetServiceByName("postgres")
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.ID).To(Equal(res.Outcomes[2].ID))
		Expect(svc.Image).To(Equal("postgres:15"))
		Expect(svc.Replicas).To(Equal(1))
		Expect(svc.Mode).To(Equal(types.ModeReplicated))
		Expect(svc.DeployStrategy).To(Equal(types.DeployRolling))
		Expect(svc.Volumes).To(Equal([]*types.VolumeMount{{Source: "db-data", Target: "/var/lib/postgresql/data"}}))
		Expect(svc.Secrets).To(Equal([]string{sec.ID}))
		Expect(svc.Env).To(Equal([]string{"POSTGRES_PASSWORD_FILE=/run/secrets/db-password"}))
	})

	It("changes nothing when applied again, without a write", func() {
		_, err := client.Apply(ctx, &api.ApplyRequest{Documents: guide()})
		Expect(err).NotTo(HaveOccurred())
		before := b.commands()

		res, err := client.Apply(ctx, &api.ApplyRequest{Documents: guide()})
		Expect(err).NotTo(HaveOccurred())
		Expect(actions(res)).To(Equal([]string{"volume/db-data unchanged", "secret/db-password unchanged", "service/postgres unchanged"}))
		Expect(res.Outcomes[1].Version).To(Equal(1))
		Expect(b.commands()).To(Equal(before))
	})

	It("makes a secret's next version when its value changes, and updates only what changed", func() {
		first, err := client.Apply(ctx, &api.ApplyRequest{Documents: guide()})
		Expect(err).NotTo(HaveOccurred())
		t := typestest.Container("t-1", first.Outcomes[2].ID, "")
		t.Secrets = []string{first.Outcomes[1].ID}
		Expect(b.fakeBackend.Apply(ctx, &fsm.PlanTasks{Upsert: []*types.Container{t}})).To(Succeed())

		docs := guide()
		docs[1].Spec.(*api.SecretManifest).Data = nil
		docs[1].Spec.(*api.SecretManifest).StringData = map[string]string{"password": "s3cret-2"}
		two := 2
		docs[2].Spec.(*api.ServiceManifest).Replicas = &two
		res, err := client.Apply(ctx, &api.ApplyRequest{Documents: docs})
		Expect(err).NotTo(HaveOccurred())
		Expect(actions(res)).To(Equal([]string{"volume/db-data unchanged", "secret/db-password configured", "service/postgres configured"}))
		Expect(res.Outcomes[1].Version).To(Equal(2))
		Expect(res.Outcomes[1].UsedBy).To(Equal([]string{"postgres"}))
		Expect(res.Outcomes[2].Changed).To(Equal([]string{"spec.replicas"}))
		Expect(res.Outcomes[2].ID).To(Equal(first.Outcomes[2].ID))

		sec, err := b.store.GetSecretByName("db-password")
		Expect(err).NotTo(HaveOccurred())
		Expect(sec.CurrentVersion()).To(Equal(2))
		Expect(fakeKeys.Open(types.SealedFor(sec.ID, 2), sec.Data)).To(Equal([]byte("s3cret-2")))
		old, ok := sec.VersionData(1)
		Expect(ok).To(BeTrue(), "task t-1 still uses version 1")
		Expect(fakeKeys.Open(sec.ID, old)).To(Equal([]byte("secret123")))
		svc, err := b.store.GetServiceByName("postgres")
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Replicas).To(Equal(2))
		Expect(svc.CreatedAt).To(Equal(typestest.Epoch))
		Expect(b.commands()).To(HaveLen(2), "a batch per apply that changes something")

		again, err := client.Apply(ctx, &api.ApplyRequest{Documents: docs})
		Expect(err).NotTo(HaveOccurred())
		Expect(actions(again)).To(Equal([]string{"volume/db-data unchanged", "secret/db-password unchanged", "service/postgres unchanged"}))
		Expect(again.Outcomes[1].Version).To(Equal(2))
		Expect(b.commands()).To(HaveLen(2))
	})

	It("is for admins only", func() {
		for _, role := range []string{api.RoleWorker, api.RoleManager} {
			_, err := as(role).Apply(ctx, &api.ApplyRequest{Documents: guide()})
			Expect(err).To(MatchError(api.ErrForbidden))
		}
		Expect(b.commands()).To(BeEmpty())
	})

	It("works out a dry run without storing anything", func() {
		res, err := client.Apply(ctx, &api.ApplyRequest{Documents: guide(), DryRun: true})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.DryRun).To(BeTrue())
		Expect(actions(res)).To(Equal([]string{"volume/db-data created", "secret/db-password created", "service/postgres created"}))
		Expect(res.Outcomes[0].ID).To(BeEmpty(), "no record has it")
		Expect(b.commands()).To(BeEmpty())
		vols, secs, svcs := stored()
		Expect(vols).To(BeEmpty())
		Expect(secs).To(BeEmpty())
		Expect(svcs).To(BeEmpty())
	})

	DescribeTable("refuse a bad document, naming its file, document and field, and store nothing",
		func(change func(docs []*api.Manifest) []*api.Manifest, message string) {
			docs := change(guide())
			_, err := client.Apply(ctx, &api.ApplyRequest{Documents: docs})
			Expect(err).To(MatchError(types.ErrInvalid))
			Expect(err).To(MatchError(ContainSubstring(message)))
			Expect(err).To(MatchError(ContainSubstring("nothing was applied")))
			Expect(b.commands()).To(BeEmpty())
			vols, secs, svcs := stored()
			Expect(vols).To(BeEmpty())
			Expect(secs).To(BeEmpty())
			Expect(svcs).To(BeEmpty())
		},
		Entry("a mount path that is not absolute", func(docs []*api.Manifest) []*api.Manifest {
			docs[2].Spec.(*api.ServiceManifest).Volumes[0].MountPath = "data"
			return docs
		}, `service.yaml: document 1 (Service postgres): spec.volumes[0].mountPath "data" is not an absolute path: start it with / (line 10)`),
		Entry("a secret neither in the cluster nor in the apply", func(docs []*api.Manifest) []*api.Manifest {
			return []*api.Manifest{docs[0], docs[2]}
		}, `service.yaml: document 1 (Service postgres): spec.secrets[0] "db-password" is not a secret`),
		Entry("an apiVersion of another program", func(docs []*api.Manifest) []*api.Manifest {
			docs[0].APIVersion = "apps/v1"
			return docs
		}, `volume.yaml: document 1 (Volume db-data): apiVersion "apps/v1" is not one Warren reads`),
		Entry("a kind Warren does not apply", func(docs []*api.Manifest) []*api.Manifest {
			docs[0].Kind, docs[0].Spec = "Deployment", nil
			return docs
		}, `kind "Deployment" is not a kind Warren applies`),
		Entry("a secret of two values", func(docs []*api.Manifest) []*api.Manifest {
			docs[1].Spec.(*api.SecretManifest).Data["user"] = "cG9zdGdyZXM="
			return docs
		}, `secret.yaml: document 1 (Secret db-password): spec has 2 values (spec.data.password, spec.data.user)`),
		Entry("a secret value that is not base64", func(docs []*api.Manifest) []*api.Manifest {
			docs[1].Spec.(*api.SecretManifest).Data["password"] = "not base64!"
			return docs
		}, `spec.data.password is not base64`),
		Entry("a driver other than local", func(docs []*api.Manifest) []*api.Manifest {
			docs[0].Spec.(*api.VolumeManifest).Driver = "nfs"
			return docs
		}, `spec.driver "nfs" is not supported`),
		Entry("a volume on a node that does not exist", func(docs []*api.Manifest) []*api.Manifest {
			docs[0].Spec.(*api.VolumeManifest).Node = "worker-9"
			return docs
		}, `spec.node "worker-9" is not a node`),
		Entry("two documents for one service", func(docs []*api.Manifest) []*api.Manifest {
			dup := *docs[2]
			dup.Document = 2
			return append(docs, &dup)
		}, `service.yaml: document 2 (Service postgres): metadata.name "postgres" is already the name of service.yaml document 1`),
		Entry("a bad image and a bad port at once", func(docs []*api.Manifest) []*api.Manifest {
			spec := docs[2].Spec.(*api.ServiceManifest)
			spec.Image = "Not An Image"
			spec.Ports = []api.PortManifest{{ContainerPort: 70000}}
			return docs
		}, `spec.ports[0].containerPort is 70000: ports are 1-65535`),
	)

	It("stores nothing when the state machine refuses the batch", func() {
		_, err := client.Apply(ctx, &api.ApplyRequest{Documents: parse("volume.yaml", guideVolume)})
		Expect(err).NotTo(HaveOccurred())
		b.breakBatch = true

		_, err = client.Apply(ctx, &api.ApplyRequest{Documents: guide()})
		Expect(err).To(MatchError(ContainSubstring("nothing was applied")))
		Expect(err).To(MatchError(ContainSubstring("no-such-service")))
		Expect(b.commands()).To(HaveLen(2))
		vols, secs, svcs := stored()
		Expect(vols).To(HaveLen(1))
		Expect(secs).To(BeEmpty())
		Expect(svcs).To(BeEmpty())
	})

	It("pins a volume to the node it names, and refuses to move it", func() {
		for _, id := range []string{"n1", "n2"} {
			Expect(b.store.UpdateNode(typestest.Node(id))).To(Succeed())
		}
		docs := parse("volume.yaml", guideVolume+"  node: n1\n")
		res, err := client.Apply(ctx, &api.ApplyRequest{Documents: docs})
		Expect(err).NotTo(HaveOccurred())
		Expect(actions(res)).To(Equal([]string{"volume/db-data created"}))
		vol, err := b.store.GetVolumeByName("db-data")
		Expect(err).NotTo(HaveOccurred())
		Expect(vol.NodeID).To(Equal("n1"))

		res, err = client.Apply(ctx, &api.ApplyRequest{Documents: parse("volume.yaml", guideVolume)})
		Expect(err).NotTo(HaveOccurred())
		Expect(actions(res)).To(Equal([]string{"volume/db-data unchanged"}), "a volume placed stays where it is")

		_, err = client.Apply(ctx, &api.ApplyRequest{Documents: parse("volume.yaml", guideVolume+"  node: n2\n")})
		Expect(err).To(MatchError(ContainSubstring("spec.node is n2, but volume db-data lives on node n1")))

		relabelled := parse("volume.yaml", strings.Replace(guideVolume, "env: production", "env: staging", 1))
		res, err = client.Apply(ctx, &api.ApplyRequest{Documents: relabelled})
		Expect(err).NotTo(HaveOccurred())
		Expect(res.Outcomes[0].Action).To(Equal(api.ActionConfigured))
		Expect(res.Outcomes[0].Changed).To(Equal([]string{"spec.labels"}))
		vol, err = b.store.GetVolumeByName("db-data")
		Expect(err).NotTo(HaveOccurred())
		Expect(vol.Labels["env"]).To(Equal("staging"))
		Expect(vol.NodeID).To(Equal("n1"))
	})
})

var _ = Describe("ParseManifests", func() {
	It("reads several documents per file, counting the empty ones", func() {
		docs, err := api.ParseManifests("all.yaml", []byte("---\n"+guideVolume+"---\n# nothing here\n---\n"+guideSecret+"---\n"+guideService+"...\n"))
		Expect(err).NotTo(HaveOccurred())
		Expect(docs).To(HaveLen(3))
		Expect([]int{docs[0].Document, docs[1].Document, docs[2].Document}).To(Equal([]int{1, 3, 4}))
		Expect(docs[2].Source).To(Equal("all.yaml"))
		Expect(docs[2].Spec).To(Equal(&api.ServiceManifest{
			Image: "postgres:15", Replicas: func() *int { one := 1; return &one }(),
			Volumes: []api.MountManifest{{Name: "db-data", MountPath: "/var/lib/postgresql/data"}},
			Secrets: []string{"db-password"},
			Env:     []api.EnvManifest{{Name: "POSTGRES_PASSWORD_FILE", Value: "/run/secrets/db-password"}},
		}))
	})

	It("reads every field of a service", func() {
		docs, err := api.ParseManifests("web.yaml", []byte(`apiVersion: warren.io/v1
kind: Service
metadata: {name: web}
spec:
  image: busybox
  mode: global
  command: [/bin/httpd]
  args: [-f, -p, "80"]
  workingDir: /var/www
  user: "1000:1000"
  env: [{name: PORT, value: 80}]
  ports: [{containerPort: 80, hostPort: 8080, protocol: tcp}]
  volumes: [{name: www, mountPath: /var/www, readOnly: true}]
  labels: {tier: front}
  constraints: ["node.role==worker"]
  restartPolicy: {condition: on-failure, maxAttempts: 3, delay: 2s}
  resources: {limits: {cpus: 0.5, memory: 64M}, reservations: {memory: 32MiB}}
  healthCheck: {type: http, port: 80, path: /healthz, interval: 5s, retries: 2}
  stopGracePeriod: 20s
  updateConfig: {parallelism: 2, delay: 10s, failureAction: rollback}
`))
		Expect(err).NotTo(HaveOccurred())
		spec := docs[0].Spec.(*api.ServiceManifest)
		Expect(spec.Env).To(Equal([]api.EnvManifest{{Name: "PORT", Value: "80"}}), "a number is read as written")
		Expect(spec.Resources.Limits.Memory).To(Equal(api.ByteSize(64 << 20)))
		Expect(spec.Resources.Reservations.Memory).To(Equal(api.ByteSize(32 << 20)))
		Expect(spec.StopGracePeriod).To(Equal(api.Duration(20e9)))
		Expect(*spec.UpdateConfig.Parallelism).To(Equal(2))
		Expect(spec.HealthCheck.Interval).To(Equal(api.Duration(5e9)))
	})

	DescribeTable("name the file, the document and the field of every problem",
		func(yaml string, messages ...string) {
			_, err := api.ParseManifests("service.yaml", []byte(yaml))
			Expect(err).To(MatchError(types.ErrInvalid))
			for _, m := range messages {
				Expect(err).To(MatchError(ContainSubstring(m)))
			}
		},
		Entry("an unknown field", strings.Replace(guideService, "mountPath", "mountpath", 1),
			`service.yaml: document 1 (Service postgres): spec.volumes[0].mountpath is not a field Warren knows: use name, mountPath or readOnly (line 10)`),
		Entry("a value of the wrong type", strings.Replace(guideService, "replicas: 1", "replicas: two", 1),
			`service.yaml: document 1 (Service postgres): spec.replicas is "two": want a whole number (line 7)`),
		Entry("a list given as one value", strings.Replace(guideService, "secrets:\n    - db-password", "secrets: db-password", 1),
			`spec.secrets is "db-password": want a list`),
		Entry("a field given twice", guideService+"  image: postgres:16\n",
			`spec.image is given twice (first on line 6)`),
		Entry("a second document with a problem", guideVolume+"---\n"+strings.Replace(guideService, "/var/lib/postgresql/data", "data", 1),
			`service.yaml: document 2 (Service postgres): spec.volumes[0].mountPath "data" is not an absolute path: start it with / (line 20)`),
		Entry("a kind Warren does not apply", strings.Replace(guideService, "kind: Service", "kind: Deployment", 1),
			`service.yaml: document 1 (Deployment postgres): kind "Deployment" is not a kind Warren applies: use Volume, Secret or Service (line 2)`),
		Entry("a field at the top that is not one", guideService+"status: {}\n",
			`status is not a field Warren knows: use apiVersion, kind, metadata or spec`),
		Entry("a document without apiVersion nor name", "kind: Volume\n",
			`service.yaml: document 1 (Volume): apiVersion is missing: start the document with apiVersion: warren.io/v1`,
			`metadata.name is missing: name the volume`),
		Entry("a file that is not YAML", "apiVersion: [\n",
			`service.yaml: document 1: is not valid YAML: line 1`),
		Entry("a file without a document", "# nothing\n",
			`service.yaml: holds no document`),
		Entry("a document that is not a mapping", "- a\n- b\n",
			`service.yaml: document 1: is a list, not a mapping`),
		Entry("a bad name", strings.Replace(guideService, "name: postgres", "name: Postgres_DB", 1),
			`metadata.name "Postgres_DB" is not a valid name`),
		Entry("a stop grace period in fractions of a second", guideService+"  stopGracePeriod: 1500ms\n",
			`spec.stopGracePeriod is 1.5s: use whole seconds`),
		Entry("replicas of a global service", guideService+"  mode: global\n",
			`spec.replicas does not apply to a global service`),
		Entry("an environment variable without a name", guideService+"    - value: x\n",
			`spec.env[1].name is empty`),
	)
})
