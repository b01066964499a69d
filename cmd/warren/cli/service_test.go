package cli_test

import (
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

var _ = Describe("service create", func() {
	When("it describes the task's container", Label("integ"), func() {
		It("stores every setting in the service and its tasks", func() {
			_, global := startCluster()
			warren := func(args ...string) (int, string, string) { return run(nil, append(global, args...)...) }
			code, _, errOut := warren("service", "create", "web", "--image", "busybox",
				"--entrypoint", "/bin/httpd", "-w", "/var/www", "-u", "app:1000",
				"--limit-cpu", "0.5", "--limit-memory", "64M", "--reserve-memory", "32MiB",
				"--stop-grace-period", "20s", "--volume", "www:/var/www:ro", "--volume", "cache:/cache",
				"--restart-condition", "on-failure", "--restart-max-attempts", "3", "--restart-delay", "2s",
				"--health-http", "80/healthz", "--health-interval", "5s", "--health-retries", "2",
				"--", "-f", "-p", "80")
			Expect(code).To(Equal(0), errOut)
			code, out, errOut := warren("service", "inspect", "web", "-o", "json")
			Expect(code).To(Equal(0), errOut)
			var svc types.Service
			Expect(json.Unmarshal([]byte(out), &svc)).To(Succeed(), out)
			Expect(svc.Command).To(Equal([]string{"/bin/httpd"}))
			Expect(svc.Args).To(Equal([]string{"-f", "-p", "80"}))
			Expect(svc.WorkingDir).To(Equal("/var/www"))
			Expect(svc.User).To(Equal("app:1000"))
			Expect(svc.Resources).To(Equal(&types.ResourceRequirements{CPULimit: 0.5, MemoryLimit: 64 << 20, MemoryReservation: 32 << 20}))
			Expect(svc.StopTimeout).To(Equal(20))
			Expect(svc.Volumes).To(Equal([]*types.VolumeMount{{Source: "www", Target: "/var/www", ReadOnly: true}, {Source: "cache", Target: "/cache"}}))
			Expect(svc.RestartPolicy).To(Equal(&types.RestartPolicy{Condition: types.RestartOnFailure, MaxAttempts: 3, Delay: 2 * time.Second}))
			Expect(svc.HealthCheck).To(Equal(&types.HealthCheck{Type: types.HealthCheckHTTP, Port: 80, Path: "/healthz",
				Interval: 5 * time.Second, Timeout: 30 * time.Second, Retries: 2}))

			Eventually(func() string { _, out, _ := warren("service", "ps", "web", "-o", "json"); return out }, 10*time.Second, 50*time.Millisecond).
				Should(ContainSubstring(`"Command": [`))
			_, out, _ = warren("service", "ps", "web", "-o", "json")
			var tasks []types.Container
			Expect(json.Unmarshal([]byte(out), &tasks)).To(Succeed(), out)
			Expect(tasks).NotTo(BeEmpty())
			Expect(tasks[0].Command).To(Equal(svc.Command))
			Expect(tasks[0].Args).To(Equal(svc.Args))
			Expect(tasks[0].WorkingDir).To(Equal(svc.WorkingDir))
			Expect(tasks[0].User).To(Equal(svc.User))
		})
	})

	DescribeTable("refuses bad container flags before it calls a manager",
		func(flag []string, message string) {
			args := append([]string{"--manager", "127.0.0.1:1", "service", "create", "web", "--image", "busybox"}, flag...)
			code, _, errOut := run(nil, args...)
			Expect(code).To(Equal(1))
			Expect(errOut).To(ContainSubstring(message))
			Expect(errOut).NotTo(ContainSubstring("127.0.0.1:1"))
		},
		Entry("a memory size without a number", []string{"--limit-memory", "lots"}, "use a size such as 64M"),
		Entry("a memory size in an unknown unit", []string{"--limit-memory", "64Q"}, "use a size such as 64M"),
		Entry("a volume without a path", []string{"--volume", "data"}, "use NAME:/PATH"),
		Entry("a volume with a bad mode", []string{"--volume", "data:/data:rx"}, "NAME:/PATH:ro"),
		Entry("a stop grace period in fractions of a second", []string{"--stop-grace-period", "1500ms"}, "whole seconds"),
		Entry("two health checks", []string{"--health-cmd", "true", "--health-tcp", "80"}, "give one of"),
		Entry("health tuning without a check", []string{"--health-retries", "5"}, "add --health-cmd"),
		Entry("an http check without a port", []string{"--health-http", "/healthz"}, "use PORT or PORT/PATH"),
		Entry("a restart condition that does not exist", []string{"--restart-condition", "sometimes"}, "must be one of none, on-failure, always"),
	)
})
