package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	wctd "github.com/warren-orchestrator/warren/backends/containerd"
	"github.com/warren-orchestrator/warren/backends/containerd/testimage"
	"github.com/warren-orchestrator/warren/orchestrator/types"
)

// guidePath is the storage guide, the user's manual of volumes and
// secrets: every warren command in it runs here, in order.
const guidePath = "../docs/guide/storage.md"

// step is one command of the guide: the exit code and the output (stdout
// and stderr) it must give, and what to check or do after it.
type step struct {
	cmd   string
	code  int
	want  []string // regular expressions the output matches
	after func()
}

// guideCommands extracts the guide's warren commands in order: the lines
// of its bash blocks that run warren (alone or at the end of a pipe),
// continuation lines joined. Other lines (sudo, tar, cron entries) are
// the operator's, not warren's.
func guideCommands(text string) []string {
	var cmds []string
	for _, block := range regexp.MustCompile("(?s)```bash\n(.*?)```").FindAllStringSubmatch(text, -1) {
		cur := ""
		for _, line := range strings.Split(block[1], "\n") {
			cur = strings.TrimSpace(cur + " " + strings.TrimSpace(line))
			if strings.HasSuffix(cur, "\\") {
				cur = strings.TrimSuffix(cur, "\\")
				continue
			}
			if strings.HasPrefix(cur, "warren ") || strings.Contains(cur, "| warren ") {
				cmds = append(cmds, strings.Join(strings.Fields(cur), " "))
			}
			cur = ""
		}
	}
	return cmds
}

// guideFiles extracts the YAML files the guide shows, by the name in bold
// before each.
func guideFiles(text string) map[string]string {
	files := map[string]string{}
	for _, m := range regexp.MustCompile("(?s)\\*\\*([a-z-]+\\.yaml):\\*\\*\n```yaml\n(.*?)```").FindAllStringSubmatch(text, -1) {
		files[m[1]] = m[2]
	}
	return files
}

var _ = Describe("The storage guide", Label("integ"), func() {
	It("runs every warren command of docs/guide/storage.md in order, with the outputs it shows", func(sctx SpecContext) {
		text, err := os.ReadFile(guidePath)
		Expect(err).NotTo(HaveOccurred())
		var images []testimage.Options
		for _, name := range []string{"postgres:15", "api:latest", "webapp:latest"} {
			images = append(images, testimage.Options{Name: "docker.io/library/" + name})
		}
		n := startNode(sctx, images...)
		m, client := n.m, n.client
		ctx := context.Background()

		// The guide's commands run in bash, as typed, in a directory
		// holding its YAML files. `warren` there is the binary with this
		// node's data dir (its admin certificate); the guide's manager
		// address and its /path/to/ files are this node's and files made
		// here.
		work := GinkgoT().TempDir()
		for name, body := range guideFiles(string(text)) {
			Expect(os.WriteFile(filepath.Join(work, name), []byte(body), 0o644)).To(Succeed())
		}
		Expect(guideFiles(string(text))).To(HaveLen(3))
		files := GinkgoT().TempDir()
		Expect(os.WriteFile(filepath.Join(files, "cert.pem"), []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"), 0o600)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(files, "key.pem"), []byte("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n"), 0o600)).To(Succeed())
		bin := GinkgoT().TempDir()
		wrapper := fmt.Sprintf(`#!/bin/sh
n=$#
for a in "$@"; do
	case "$a" in
	127.0.0.1:8080) a=%q ;;
	/path/to/*) a=%q/"${a#/path/to/}" ;;
	esac
	set -- "$@" "$a"
done
shift $n
exec %q --data-dir %q "$@"
`, m.APIAddr, files, warrenBin, m.DataDir)
		Expect(os.WriteFile(filepath.Join(bin, "warren"), []byte(wrapper), 0o755)).To(Succeed())
		sh := func(cmd string) (int, string) {
			GinkgoHelper()
			c := exec.CommandContext(sctx, "bash", "-c", cmd)
			c.Dir = work
			c.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "WARREN_MANAGER="+m.APIAddr)
			out, err := c.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); ok {
				return ee.ExitCode(), string(out)
			}
			Expect(err).NotTo(HaveOccurred())
			return 0, string(out)
		}

		// What the tasks see: a file in a running task of service, read
		// with ctr, as the guide's troubleshooting does.
		inTask := func(service string, args ...string) string {
			GinkgoHelper()
			var out string
			Eventually(func(g Gomega) {
				s, err := client.GetService(ctx, service)
				g.Expect(err).NotTo(HaveOccurred())
				tasks, err := client.ListContainers(ctx, s.ID, "", false)
				g.Expect(err).NotTo(HaveOccurred())
				var id string
				for _, t := range tasks {
					if t.DesiredState == types.ContainerRunning && t.ActualState == types.ContainerRunning {
						id = t.ContainerID
					}
				}
				g.Expect(id).NotTo(BeEmpty(), "a running task of %s", service)
				ctr := append([]string{"--address", n.ctd.Address, "-n", wctd.DefaultNamespace, "tasks", "exec", "--exec-id",
					fmt.Sprintf("guide-%d", time.Now().UnixNano()), id}, args...)
				b, err := exec.CommandContext(sctx, "ctr", ctr...).CombinedOutput()
				g.Expect(err).NotTo(HaveOccurred(), "%s", b)
				out = string(b)
			}).WithTimeout(60 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())
			return out
		}
		running := func(service string, replicas int) {
			GinkgoHelper()
			Eventually(func(g Gomega) {
				s, err := client.GetService(ctx, service)
				g.Expect(err).NotTo(HaveOccurred())
				tasks, err := client.ListContainers(ctx, s.ID, "", false)
				g.Expect(err).NotTo(HaveOccurred())
				up := 0
				for _, t := range tasks {
					if t.DesiredState == types.ContainerRunning && t.ActualState == types.ContainerRunning {
						up++
					}
				}
				g.Expect(up).To(Equal(replicas))
			}).WithTimeout(90*time.Second).WithPolling(200*time.Millisecond).Should(Succeed(), func() string { return m.Tail(20) })
		}
		volumeDir := func(name string) string { return filepath.Join(m.DataDir, "volumes", name) }

		created := `(just now|\d+[mhd] ago)`
		noImage := []string{`needs --image IMAGE`}
		unknownCommand := func(name string) []string { return []string{`unknown command "` + name + `"`} }
		volumeInspect := []string{`Name:\s+db-data\n`, `ID:\s+\S+\n`, `Driver:\s+local\n`, `Mount Point:\s+/\S*/volumes/db-data\n`,
			`Node:\s+\S+\n`, `Size:\s+\S+`, `Used By:`, `Created:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`}
		steps := []step{
			{cmd: "warren volume create my-data --driver local --manager 127.0.0.1:8080", want: []string{`my-data`}},
			{cmd: "warren volume create db-data --driver local --label env=production --label app=postgres --manager 127.0.0.1:8080", want: []string{`db-data`},
				after: func() {
					v, err := client.GetVolume(ctx, "db-data")
					Expect(err).NotTo(HaveOccurred())
					Expect(v.Labels).To(Equal(map[string]string{"env": "production", "app": "postgres"}))
				}},
			{cmd: "warren volume list --manager 127.0.0.1:8080", want: []string{`NAME\s+DRIVER\s+SIZE\s+NODE\s+CREATED\n`,
				`(?m)^db-data\s+local\s+-\s+-\s+` + created, `(?m)^my-data\s+local\s+-\s+-\s+` + created}},
			{cmd: "warren volume inspect db-data --manager 127.0.0.1:8080", want: volumeInspect},
			{cmd: "warren service create postgres --image postgres:15 --replicas 1 --volume db-data:/var/lib/postgresql/data --env POSTGRES_PASSWORD=password --manager 127.0.0.1:8080",
				after: func() {
					running("postgres", 1)
					Expect(inTask("postgres", "sh", "-c", "echo row1 >/var/lib/postgresql/data/table; echo $POSTGRES_PASSWORD")).To(Equal("password\n"))
					Expect(os.ReadFile(filepath.Join(volumeDir("db-data"), "table"))).To(Equal([]byte("row1\n")))
					v, err := client.GetVolume(ctx, "db-data")
					Expect(err).NotTo(HaveOccurred())
					nodes, err := client.ListNodes(ctx, false)
					Expect(err).NotTo(HaveOccurred())
					Expect(nodes).To(HaveLen(1))
					Expect(v.NodeID).To(Equal(nodes[0].ID), "the volume is made on the task's node")
					By("the node measures the volume and reports its size")
					Eventually(func() (int64, error) {
						v, err := client.GetVolume(ctx, "db-data")
						if err != nil {
							return 0, err
						}
						return v.Size, nil
					}).WithTimeout(60 * time.Second).WithPolling(500 * time.Millisecond).Should(BeEquivalentTo(len("row1\n")))
					Expect(client.GetVolume(ctx, "db-data")).To(HaveField("MountPoint", volumeDir("db-data")), "the node says where its volumes are")
					code, out := sh("warren volume list")
					Expect(code).To(Equal(0), out)
					Expect(out).To(MatchRegexp(`(?m)^db-data\s+local\s+5B\s+\S+\s+`))
				}},
			{cmd: "warren volume delete db-data --manager 127.0.0.1:8080", code: 1, want: []string{`used by service postgres`, `--force`}},
			{cmd: "warren volume delete db-data --force --manager 127.0.0.1:8080", want: []string{`postgres`},
				after: func() {
					running("postgres", 0)
					Expect(client.GetService(ctx, "postgres")).To(HaveField("Replicas", 0))
					Eventually(func() error { _, err := os.Stat(volumeDir("db-data")); return err }).WithTimeout(30*time.Second).
						Should(MatchError(os.ErrNotExist), "the volume's data goes with it")
				}},
			{cmd: "warren volume create shared-data --driver nfs --option server=192.168.1.100 --option path=/exports/shared", code: 1, want: []string{`nfs`, `local`}},
			{cmd: "warren volume create ceph-data --driver ceph --option pool=warren --option size=10G", code: 1, want: []string{`ceph`, `local`}},
			{cmd: "warren volume create db-data --manager 127.0.0.1:8080", want: []string{`db-data`}},
			{cmd: "warren service create postgres --replicas 1 --volume db-data:/var/lib/postgresql/data", code: 1, want: noImage},
			{cmd: "warren service create app --replicas 3 --volume data:/data", code: 1, want: noImage},
			{cmd: "warren volume create app-data-1", want: []string{`app-data-1`}},
			{cmd: "warren volume create app-data-2", want: []string{`app-data-2`}},
			{cmd: "warren volume create app-data-3", want: []string{`app-data-3`}},
			{cmd: "warren volume create shared-data --driver nfs", code: 1, want: []string{`nfs`, `local`}},
			{cmd: "warren service create app --replicas 3 --volume shared-data:/data", code: 1, want: noImage},
			{cmd: "warren service create postgres-primary --volume primary-data:/data", code: 1, want: noImage},
			{cmd: "warren service create postgres-replica --volume replica-data:/data", code: 1, want: noImage},
			{cmd: "warren secret create db-password --from-literal password=mySecurePassword123 --manager 127.0.0.1:8080"},
			{cmd: "warren secret create tls-cert --from-file /path/to/cert.pem --manager 127.0.0.1:8080"},
			{cmd: "warren secret create tls-key --from-file /path/to/key.pem --manager 127.0.0.1:8080"},
			{cmd: `echo -n "mySecurePassword" | warren secret create db-password --from-stdin --manager 127.0.0.1:8080`, code: 1, want: []string{`db-password`, `(?i)already used`}},
			{cmd: "warren secret list --manager 127.0.0.1:8080", want: []string{`NAME\s+SIZE\s+CREATED\n`,
				`(?m)^db-password\s+19B\s+` + created, `(?m)^tls-cert\s+\d+B\s+` + created, `(?m)^tls-key\s+\d+B\s+` + created}},
			{cmd: "warren secret inspect db-password --manager 127.0.0.1:8080", want: []string{`Name:\s+db-password\n`, `ID:\s+\S+\n`,
				`Size:\s+19 bytes\n`, `Created:\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`, `Used By:\s+-`}},
			{cmd: "warren secret create db-password --from-literal password=secret123", code: 1, want: []string{`(?i)already used`}},
			{cmd: "warren service create api --image api:latest --replicas 5 --secret db-password --env DB_PASSWORD_FILE=/run/secrets/db-password --manager 127.0.0.1:8080",
				after: func() {
					running("api", 5)
					Expect(inTask("api", "sh", "-c", `cat "$DB_PASSWORD_FILE"`)).To(Equal("mySecurePassword123"))
				}},
			{cmd: "warren service create webapp --image webapp:latest --secret db-password --secret api-key --secret tls-cert --secret tls-key --manager 127.0.0.1:8080",
				code: 1, want: []string{`--secret api-key`, `no secret`},
				after: func() {
					By("the guide lists api-key but never makes it: made here, the same command works")
					code, out := sh("warren secret create api-key --from-literal key=k-0123456789")
					Expect(code).To(Equal(0), out)
					code, out = sh(guideCommands(string(text))[27])
					Expect(code).To(Equal(0), out)
					Expect(inTask("webapp", "ls", "/run/secrets")).To(Equal("api-key\ndb-password\ntls-cert\ntls-key\n"))
				}},
			{cmd: "warren secret delete db-password --manager 127.0.0.1:8080", code: 1, want: []string{`used by service api, webapp`, `--force`}},
			{cmd: "warren secret delete db-password --force --manager 127.0.0.1:8080", want: []string{`removed from service api, webapp`}},
			{cmd: "warren cluster init", code: 1, want: []string{`already`}},
			{cmd: "warren volume snapshot db-data --name snapshot-20251010", code: 1, want: unknownCommand("snapshot")},
			{cmd: "warren volume restore db-data --from snapshot-20251010", code: 1, want: unknownCommand("restore")},
			{cmd: "warren secret export --all --output secrets-backup.json", code: 1, want: unknownCommand("export")},
			{cmd: "warren secret import --file secrets-backup.json", code: 1, want: unknownCommand("import")},
			{cmd: "warren service create postgres --image postgres:15", code: 1, want: []string{`postgres`, `(?i)already used`}},
			{cmd: "warren volume create db-data", code: 1, want: []string{`db-data`, `(?i)already used`}},
			{cmd: "warren service create postgres --volume db-data:/var/lib/postgresql/data", code: 1, want: noImage},
			{cmd: "warren service create app --env DB_PASSWORD=secret123", code: 1, want: noImage},
			{cmd: "warren secret create db-password --from-literal password=secret123"},
			{cmd: "warren service create app --secret db-password", code: 1, want: noImage},
			{cmd: "warren service create postgres --replicas 1 --volume db-data:/var/lib/postgresql/data", code: 1, want: noImage},
			{cmd: "warren volume inspect db-data", want: append(volumeInspect[:4:4], `-\s+postgres \(service\)`)},
			{cmd: "warren secret update db-password --from-literal password=newPassword", want: []string{`db-password: version 2`}},
			{cmd: "warren service update postgres --force-recreate"},
			{cmd: "warren service create app --volume config-data:/etc/config:ro", code: 1, want: noImage},
			{cmd: "warren volume create db-data --size 10G", code: 1, want: []string{`unknown flag: --size`}},
			{cmd: "warren namespace create prod --volume-quota 100G --secret-quota 100", code: 1, want: unknownCommand("namespace")},
			{cmd: "warren apply -f volume.yaml -f secret.yaml -f service.yaml",
				want: []string{`volume/db-data (unchanged|configured)`, `secret/db-password configured`, `service/postgres configured`},
				after: func() {
					running("postgres", 1)
					Expect(inTask("postgres", "sh", "-c", `cat "$POSTGRES_PASSWORD_FILE"`)).To(Equal("secret123"))
					By("applied again, nothing changes")
					code, out := sh("warren apply -f volume.yaml -f secret.yaml -f service.yaml")
					Expect(code).To(Equal(0), out)
					Expect(out).To(Equal("volume/db-data unchanged\nsecret/db-password unchanged\nservice/postgres unchanged\n"))
				}},
			{cmd: "warren volume inspect db-data", want: append(volumeInspect[:4:4], `-\s+postgres \(service\)`, `-\s+postgres\.1\.\S+ \(task\)`)},
			{cmd: "warren secret inspect db-password", want: []string{`Name:\s+db-password\n`, `Version:\s+3`, `Used By:\s+postgres`}},
			{cmd: "warren service inspect myapp", code: 1, want: []string{`no service with ID or name "myapp"`}},
			{cmd: "warren volume inspect db-data", want: volumeInspect},
			{cmd: "warren service delete myapp", code: 1, want: []string{`no service with ID or name "myapp"`}},
			{cmd: "warren service create myapp --volume db-data:/data", code: 1, want: noImage},
		}

		var table []string
		for _, st := range steps {
			table = append(table, st.cmd)
		}
		Expect(table).To(Equal(guideCommands(string(text))), "this transcript runs the guide's commands, in the guide's order")
		for i, st := range steps {
			By(fmt.Sprintf("%d: %s", i, st.cmd))
			code, out := sh(st.cmd)
			Expect(code).To(Equal(st.code), "step %d: %s\n%s", i, st.cmd, out)
			for _, re := range st.want {
				Expect(out).To(MatchRegexp(re), "step %d: %s", i, st.cmd)
			}
			if st.code != 0 {
				Expect(out).NotTo(ContainSubstring("Usage:"), "step %d: an error says what is wrong, not the whole usage", i)
			}
			if st.after != nil {
				st.after()
			}
		}
	})
})
