package containerd_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	containerd "github.com/containerd/containerd"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/images"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"golang.org/x/sys/unix"

	"github.com/warren-orchestrator/warren/backends/clock"
	wctd "github.com/warren-orchestrator/warren/backends/containerd"
	"github.com/warren-orchestrator/warren/backends/containerd/ctdtest"
	"github.com/warren-orchestrator/warren/backends/containerd/testimage"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/runtimetest"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = runtimetest.DescribeRuntime("containerd", func() runtimetest.Harness {
	return runtimetest.Harness{
		Runtime: newRuntime(wctd.Config{}),
		Clock:   clock.Wall{},
		Image:   testimage.DefaultName,
		Await:   runtimetest.RealAwait(30*time.Second, 20*time.Millisecond),
	}
}, Label("integ"))

// shell is a task of the test image that runs script with sh.
func shell(id, script string) *types.Container {
	t := typestest.Container(id, "svc-1", "node-1")
	t.Image = testimage.DefaultName
	t.Command = []string{"/bin/sh", "-c", script}
	return t
}

var _ = Describe("The containerd runtime", Label("integ"), func() {
	var rt *wctd.Runtime
	BeforeEach(func() { rt = newRuntime(wctd.Config{}) })

	get := func(r orchestrator.Runtime, id string) (orchestrator.RuntimeContainer, bool) {
		GinkgoHelper()
		cs, err := r.Containers()
		Expect(err).NotTo(HaveOccurred())
		i := slices.IndexFunc(cs, func(c orchestrator.RuntimeContainer) bool { return c.TaskID == id })
		if i < 0 {
			return orchestrator.RuntimeContainer{}, false
		}
		return cs[i], true
	}
	// await returns the task's container once it is in one of states.
	await := func(r orchestrator.Runtime, id string, states ...types.ContainerState) orchestrator.RuntimeContainer {
		GinkgoHelper()
		var c orchestrator.RuntimeContainer
		Eventually(func() types.ContainerState {
			c, _ = get(r, id)
			return c.State
		}).WithTimeout(30*time.Second).WithPolling(20*time.Millisecond).Should(BeElementOf(states), func() string {
			return fmt.Sprintf("task %s: %+v", id, c)
		})
		return c
	}
	output := func(id string) string {
		GinkgoHelper()
		b, err := os.ReadFile(rt.LogPath(id))
		Expect(err).NotTo(HaveOccurred())
		return string(b)
	}

	It("runs the task's command and args, as its user, in its working dir, with its env and secrets", func() {
		t := shell("task-1", `echo "arg=$0"; pwd; id -u; id -g; echo "ENV=$ENV"; cat /run/secrets/db-password; echo; ls -ln /run/secrets; exit 3`)
		t.Args = []string{"first"}
		t.WorkingDir, t.User = "/var/www", testimage.User
		Expect(rt.Start(t, map[string][]byte{"db-password": []byte("s3cret")})).To(Succeed())
		c := await(rt, "task-1", types.ContainerFailed)
		Expect(c.ExitCode).To(Equal(3))
		Expect(c.Error).To(Equal("exit code 3"))
		Expect(c.FinishedAt).To(BeTemporally(">=", c.StartedAt))
		out := output("task-1")
		Expect(out).To(ContainSubstring("arg=first\n/var/www\n1000\n1000\nENV=production\ns3cret\n"))
		Expect(out).To(MatchRegexp(`-r-------- +1 1000 +1000 +6 .* db-password`))
	})

	It("runs the image's entrypoint with the task's args alone", func() {
		t := typestest.Container("task-1", "svc-1", "node-1")
		t.Image, t.Args = testimage.DefaultName, []string{"echo", "hello", "from", "args"}
		Expect(rt.Start(t, nil)).To(Succeed())
		c := await(rt, "task-1", types.ContainerComplete)
		Expect(c.ExitCode).To(BeZero())
		Expect(output("task-1")).To(Equal("hello from args\n"))
	})

	It("sets the CPU and memory limits in the container's cgroups, and enforces the memory limit", func() {
		limits := &types.ResourceRequirements{CPULimit: 0.5, MemoryLimit: 64 << 20}
		t := shell("task-1", Cmd())
		t.Resources = limits
		Expect(rt.Start(t, nil)).To(Succeed())
		await(rt, "task-1", types.ContainerRunning)
		pid := taskPID(rt, "task-1")
		Expect(cgroupValue(pid, "cpu", "cpu.cfs_quota_us", "cpu.max")).To(Or(Equal("50000"), Equal("50000 100000")))
		Expect(cgroupValue(pid, "memory", "memory.limit_in_bytes", "memory.max")).To(Equal("67108864"))
		cgroup := filepath.Dir(cgroupFile(pid, "memory", "memory.limit_in_bytes", "memory.max"))
		Expect(cgroup).To(BeADirectory())
		Expect(rt.Stop("task-1", 5*time.Second)).To(Succeed())
		await(rt, "task-1", types.ContainerShutdown)
		Expect(rt.Remove("task-1")).To(Succeed())
		Expect(cgroup).NotTo(BeADirectory(), "the container's cgroup goes with it")

		hog := shell("task-2", `head -c 200m /dev/zero | tail >/dev/null`)
		hog.Resources = limits
		Expect(rt.Start(hog, nil)).To(Succeed())
		c := await(rt, "task-2", types.ContainerFailed)
		Expect(c.ExitCode).To(Equal(137), "200 MiB in a 64 MiB container")
		Expect(c.Error).To(ContainSubstring("out of memory"))
	})

	It("stops with SIGTERM, and kills with SIGKILL at the stop timeout", func() {
		Expect(rt.Start(shell("polite", Cmd()), nil)).To(Succeed())
		Expect(rt.Start(shell("stubborn", `trap '' TERM; while :; do sleep 1; done`), nil)).To(Succeed())
		await(rt, "polite", types.ContainerRunning)
		await(rt, "stubborn", types.ContainerRunning)
		asked := time.Now()
		Expect(rt.Stop("polite", 2*time.Second)).To(Succeed())
		Expect(rt.Stop("stubborn", 2*time.Second)).To(Succeed())
		polite := await(rt, "polite", types.ContainerShutdown)
		Expect(polite.ExitCode).To(BeZero())
		Expect(polite.FinishedAt.Sub(asked)).To(BeNumerically("<", 2*time.Second))
		stubborn := await(rt, "stubborn", types.ContainerShutdown)
		Expect(stubborn.ExitCode).To(Equal(137))
		Expect(stubborn.FinishedAt.Sub(asked)).To(BeNumerically(">=", 2*time.Second))
	})

	It("keeps secrets on a tmpfs only while the task runs, and mounts volumes, read-only when asked", func() {
		volumes := GinkgoT().TempDir()
		rt = newRuntime(wctd.Config{VolumesDir: volumes})
		Expect(os.MkdirAll(filepath.Join(volumes, "conf"), 0o755)).To(Succeed())
		Expect(os.WriteFile(filepath.Join(volumes, "conf", "app.conf"), []byte("colour=blue\n"), 0o644)).To(Succeed())
		t := shell("task-1", `cat /conf/app.conf; echo written >/data/out; touch /conf/new || echo "conf is read-only"; `+Cmd())
		t.Mounts = []*types.VolumeMount{{Source: "data", Target: "/data"}, {Source: "conf", Target: "/conf", ReadOnly: true}}
		Expect(rt.Start(t, map[string][]byte{"api-key": []byte("k-123")})).To(Succeed())
		c := await(rt, "task-1", types.ContainerRunning)

		dir := secretsDirOf(rt, c.RuntimeID)
		var fs unix.Statfs_t
		Expect(unix.Statfs(dir, &fs)).To(Succeed())
		Expect(fs.Type).To(BeEquivalentTo(unix.TMPFS_MAGIC), "%s is not a tmpfs", dir)
		Eventually(func() string { return output("task-1") }).Should(And(ContainSubstring("colour=blue\n"), ContainSubstring("conf is read-only\n")))
		Expect(os.ReadFile(filepath.Join(volumes, "data", "out"))).To(Equal([]byte("written\n")))

		Expect(rt.Stop("task-1", 5*time.Second)).To(Succeed())
		await(rt, "task-1", types.ContainerShutdown)
		_, _ = rt.Containers() // the sweep after the exit
		Expect(dir).NotTo(BeADirectory())
		Expect(mountsUnder(dir)).To(BeEmpty())
		Expect(rt.Remove("task-1")).To(Succeed())
		Expect(filepath.Join(volumes, "data", "out")).To(BeARegularFile(), "a volume outlives its tasks")
	})

	DescribeTable("fails a task it cannot run with an error a user can act on, leaving nothing behind",
		func(spoil func(t *types.Container) *wctd.Runtime, message string) {
			t := shell("task-1", Cmd())
			if r := spoil(t); r != nil {
				rt = r
			}
			Expect(rt.Start(t, map[string][]byte{"s": []byte("x")})).To(Succeed())
			c := await(rt, "task-1", types.ContainerFailed)
			Expect(c.Error).To(ContainSubstring(message))
			Expect(c.FinishedAt).NotTo(BeZero())
			Expect(rt.Remove("task-1")).To(Succeed())
			cs, err := rt.Containers()
			Expect(err).NotTo(HaveOccurred())
			Expect(cs).To(BeEmpty())
			ctrs, err := rt.Client().Containers(rt.Context())
			Expect(err).NotTo(HaveOccurred())
			Expect(ctrs).To(BeEmpty())
			Expect(mountsUnder(secretsDirOf(rt, ""))).To(BeEmpty())
		},
		Entry("an image that is not on the node", func(t *types.Container) *wctd.Runtime {
			t.Image = "warren/no-such-image:1"
			return nil
		}, "load it with `warren image load FILE.tar`"),
		Entry("a command that is not in the image", func(t *types.Container) *wctd.Runtime {
			t.Command = []string{"/bin/no-such-command"}
			return nil
		}, "the command is not in the image"),
		Entry("a user the image does not have", func(t *types.Container) *wctd.Runtime {
			t.User = "postgres"
			return nil
		}, `user "postgres" is not in the image`),
		Entry("a volume whose directory cannot be made", func(t *types.Container) *wctd.Runtime {
			blocker := filepath.Join(GinkgoT().TempDir(), "file")
			Expect(os.WriteFile(blocker, nil, 0o600)).To(Succeed())
			t.Mounts = []*types.VolumeMount{{Source: "data", Target: "/data"}}
			return newRuntime(wctd.Config{VolumesDir: blocker + "/volumes"})
		}, "volume data: cannot make its directory"),
	)

	It("pulls an image that is not on the node from a registry", func() {
		reg, err := ctdtest.StartRegistry(GinkgoT().TempDir())
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(reg.Stop)
		ref := reg.Addr + "/warren/busybox:pulled"
		ctx := rt.Context()

		By("pushing the test image to the registry under a name of its own, then dropping it from the node")
		img, err := rt.Client().GetImage(ctx, testimage.DefaultName)
		Expect(err).NotTo(HaveOccurred())
		tagged := images.Image{Name: ref, Target: img.Target()}
		_, err = rt.Client().ImageService().Create(ctx, tagged)
		Expect(err).NotTo(HaveOccurred())
		Expect(rt.Client().Push(ctx, ref, img.Target(), containerd.WithResolver(wctd.Resolver()))).To(Succeed())
		Expect(rt.Client().ImageService().Delete(ctx, ref)).To(Succeed())
		_, err = rt.Client().GetImage(ctx, ref)
		Expect(errdefs.IsNotFound(err)).To(BeTrue(), "%v", err)

		t := shell("task-1", "echo pulled; "+Cmd())
		t.Image = ref
		Expect(rt.Start(t, nil)).To(Succeed())
		await(rt, "task-1", types.ContainerRunning)
		Eventually(func() string { return output("task-1") }).Should(Equal("pulled\n"))
		_, err = rt.Client().GetImage(ctx, ref)
		Expect(err).NotTo(HaveOccurred(), "the image is on the node now")
		DeferCleanup(func() { _ = rt.Client().ImageService().Delete(ctx, ref) })
	})

	It("is adopted by the next runtime after a worker restart, which can stop it", func() {
		dir := GinkgoT().TempDir()
		cfg := wctd.Config{VolumesDir: dir + "/v", LogsDir: dir + "/l", SecretsDir: dir + "/s"}
		first := newRuntime(cfg)
		Expect(first.Start(shell("task-1", Cmd()), map[string][]byte{"s": []byte("x")})).To(Succeed())
		before := await(first, "task-1", types.ContainerRunning)
		Expect(first.Close()).To(Succeed())

		second := newRuntime(cfg)
		after, ok := get(second, "task-1")
		Expect(ok).To(BeTrue())
		Expect(after).To(Equal(before))
		Expect(mountsUnder(dir+"/s")).To(HaveLen(1), "the secrets of the running task stay")
		Expect(second.Stop("task-1", 5*time.Second)).To(Succeed())
		await(second, "task-1", types.ContainerShutdown)
		Expect(second.Remove("task-1")).To(Succeed())
		Expect(mountsUnder(dir + "/s")).To(BeEmpty())
	})

	It("runs an exec health check: healthy, then unhealthy with the reason", func() {
		t := shell("task-1", `touch /tmp/ok; sleep 3; rm /tmp/ok; `+Cmd())
		t.HealthCheck = &types.HealthCheck{Type: types.HealthCheckExec, Command: []string{"test", "-f", "/tmp/ok"},
			Interval: 100 * time.Millisecond, Timeout: 2 * time.Second, Retries: 2}
		Expect(rt.Start(t, nil)).To(Succeed())
		Eventually(func() types.HealthStatus { c, _ := get(rt, "task-1"); return c.Health }).
			WithTimeout(10 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal(types.HealthHealthy))
		var c orchestrator.RuntimeContainer
		Eventually(func() types.HealthStatus { c, _ = get(rt, "task-1"); return c.Health }).
			WithTimeout(15 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal(types.HealthUnhealthy))
		Expect(c.State).To(Equal(types.ContainerRunning))
		Expect(c.Error).To(HavePrefix("unhealthy: "))
		Expect(c.Error).To(ContainSubstring("exit code 1"))

		By("a new runtime (a restarted worker) goes on checking")
		again := newRuntime(wctd.Config{})
		Eventually(func() types.HealthStatus { c, _ := get(again, "task-1"); return c.Health }).
			WithTimeout(15 * time.Second).WithPolling(20 * time.Millisecond).Should(Equal(types.HealthUnhealthy))
	})

	It("gives the container its own network: published ports, an address for health checks, a way out", func() {
		// A server on the node, for the container to reach through its
		// gateway (the bridge's address).
		l, err := net.Listen("tcp", "0.0.0.0:0")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(l.Close)
		go func() {
			_ = http.Serve(l, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hello from the node") }))
		}()
		nodePort := l.Addr().(*net.TCPAddr).Port
		hostPort := freePort()

		t := shell("task-1", fmt.Sprintf(`wget -qO- http://10.232.0.1:%d/ && echo; cat /etc/hosts; exec httpd -f -p 80 -h /var/www`, nodePort))
		t.Ports = []*types.PortMapping{{ContainerPort: 80, HostPort: hostPort, Protocol: types.ProtocolTCP}}
		t.HealthCheck = &types.HealthCheck{Type: types.HealthCheckHTTP, Port: 80, Path: "/index.html",
			Interval: 100 * time.Millisecond, Timeout: time.Second, Retries: 1}
		Expect(rt.Start(t, nil)).To(Succeed())
		await(rt, "task-1", types.ContainerRunning)
		url := fmt.Sprintf("http://127.0.0.1:%d/", hostPort)
		Eventually(func() (string, error) { return get200(url) }).WithTimeout(10 * time.Second).Should(Equal("warren test image\n"))
		Eventually(func() types.HealthStatus { c, _ := get(rt, "task-1"); return c.Health }).
			WithTimeout(10 * time.Second).Should(Equal(types.HealthHealthy))
		out := output("task-1")
		Expect(out).To(HavePrefix("hello from the node\n"))
		Expect(out).To(MatchRegexp(`(?m)^10\.232\.0\.\d+\ttask-1$`))

		Expect(rt.Stop("task-1", 5*time.Second)).To(Succeed())
		await(rt, "task-1", types.ContainerShutdown)
		_, _ = rt.Containers() // the sweep after the exit
		_, err = get200(url)
		Expect(err).To(HaveOccurred(), "the port is no longer published once the task stopped")
		rules, err := exec.Command("iptables-save", "-t", "nat").Output()
		Expect(err).NotTo(HaveOccurred())
		Expect(string(rules)).NotTo(ContainSubstring(fmt.Sprintf("--dport %d ", hostPort)))
		Expect(rt.Remove("task-1")).To(Succeed())
	})

	It("sees only its own node's containers", func() {
		other := newRuntime(wctd.Config{NodeID: "node-2"})
		Expect(rt.Start(shell("task-1", Cmd()), nil)).To(Succeed())
		Expect(other.Start(shell("task-2", Cmd()), nil)).To(Succeed())
		await(rt, "task-1", types.ContainerRunning)
		await(other, "task-2", types.ContainerRunning)
		cs, err := rt.Containers()
		Expect(err).NotTo(HaveOccurred())
		Expect(cs).To(HaveLen(1))
		Expect(cs[0].TaskID).To(Equal("task-1"))
		err = rt.Stop("task-2", time.Second)
		Expect(errors.Is(err, orchestrator.ErrNoContainer)).To(BeTrue(), "%v", err)
		await(other, "task-2", types.ContainerRunning)
	})

	It("rides out containerd's restart under it: the container runs on, and is found again", func() {
		Expect(rt.Start(shell("task-1", Cmd()), nil)).To(Succeed())
		before := await(rt, "task-1", types.ContainerRunning)
		Expect(daemon.Kill()).To(Succeed())
		_, err := rt.Containers()
		Expect(err).To(HaveOccurred())
		Expect(daemon.Restart()).To(Succeed())
		Eventually(func() (orchestrator.RuntimeContainer, error) {
			cs, err := rt.Containers()
			if err != nil || len(cs) != 1 {
				return orchestrator.RuntimeContainer{}, err
			}
			return cs[0], nil
		}).WithTimeout(30 * time.Second).Should(Equal(before))
		Expect(rt.Stop("task-1", 5*time.Second)).To(Succeed())
		await(rt, "task-1", types.ContainerShutdown)
		Expect(rt.Remove("task-1")).To(Succeed())
	})
})

// Cmd is the test image's default command, as one shell line.
func Cmd() string { return testimage.Cmd[2] }

// secretsDirOf is where rt keeps the secrets of the container with
// containerd ID id (the directory of them all when id is empty).
func secretsDirOf(rt *wctd.Runtime, id string) string {
	return filepath.Join(rt.SecretsDir(), id)
}

// mountsUnder lists the mount points at or under dir.
func mountsUnder(dir string) []string {
	GinkgoHelper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	Expect(err).NotTo(HaveOccurred())
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			out = append(out, f[4])
		}
	}
	return out
}

// taskPID is the PID, in this PID namespace, of the task's main process.
func taskPID(rt *wctd.Runtime, taskID string) uint32 {
	GinkgoHelper()
	ctr, err := rt.Client().LoadContainer(rt.Context(), wctd.ContainerID(taskID))
	Expect(err).NotTo(HaveOccurred())
	t, err := ctr.Task(rt.Context(), nil)
	Expect(err).NotTo(HaveOccurred())
	return t.Pid()
}

// cgroupValue reads a cgroup file of the process (see cgroupFile).
func cgroupValue(pid uint32, controller, v1File, v2File string) string {
	GinkgoHelper()
	b, err := os.ReadFile(cgroupFile(pid, controller, v1File, v2File))
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(string(b))
}

// cgroupFile is a cgroup file of the process: v1File of its controller's
// hierarchy on cgroup v1, v2File of its unified cgroup on v2.
func cgroupFile(pid uint32, controller, v1File, v2File string) string {
	GinkgoHelper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
	Expect(err).NotTo(HaveOccurred())
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		parts := strings.SplitN(line, ":", 3)
		if len(parts) != 3 {
			continue
		}
		var file string
		switch {
		case slices.Contains(strings.Split(parts[1], ","), controller):
			file = filepath.Join("/sys/fs/cgroup", parts[1], parts[2], v1File)
		case parts[0] == "0" && parts[1] == "":
			file = filepath.Join("/sys/fs/cgroup", parts[2], v2File)
			if _, err := os.Stat(file); err != nil {
				continue // cgroup v1 with an empty unified hierarchy
			}
		default:
			continue
		}
		return file
	}
	Fail(fmt.Sprintf("no %s cgroup for process %d in %q", controller, pid, data))
	return ""
}

// get200 GETs url and returns its body, or an error for another status.
func get200(url string) (string, error) {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), err
}

// freePort is a TCP port nothing listens on now.
func freePort() int {
	GinkgoHelper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
