package cli_test

import (
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

var _ = Describe("service update", Label("integ"), func() {
	var warren func(args ...string) (int, string, string)
	BeforeEach(func() {
		_, global := startCluster()
		warren = func(args ...string) (int, string, string) { return run(nil, append(global, args...)...) }
	})

	// live returns the service's n tasks meant to run, once every one runs
	// and is as want says.
	live := func(service string, n int, want func(types.Container) bool) []types.Container {
		GinkgoHelper()
		var tasks []types.Container
		Eventually(func(g Gomega) {
			code, out, errOut := warren("service", "ps", service, "-o", "json")
			g.Expect(code).To(Equal(0), errOut)
			var all []types.Container
			g.Expect(json.Unmarshal([]byte(out), &all)).To(Succeed())
			tasks = nil
			for _, t := range all {
				if t.DesiredState == types.ContainerRunning {
					g.Expect(t.ActualState).To(Equal(types.ContainerRunning))
					g.Expect(want(t)).To(BeTrue(), "task %s", t.ID)
					tasks = append(tasks, t)
				}
			}
			g.Expect(tasks).To(HaveLen(n))
		}, 15*time.Second, 50*time.Millisecond).Should(Succeed())
		return tasks
	}

	It("gives the tasks a secret's new version with --force-recreate, then drops the old version", func() {
		code, _, errOut := warren("secret", "create", "db-password", "--from-literal", "password=one")
		Expect(code).To(Equal(0), errOut)
		code, _, errOut = warren("service", "create", "api", "--image", "busybox", "--replicas", "2", "--secret", "db-password")
		Expect(code).To(Equal(0), errOut)
		every := func(types.Container) bool { return true }
		before := live("api", 2, every)

		code, out, errOut := warren("secret", "update", "db-password", "--from-literal", "password=two2")
		Expect(code).To(Equal(0), errOut)
		Expect(out).To(ContainSubstring("db-password: version 2"))
		Expect(out).To(ContainSubstring("warren service update SERVICE --force-recreate` for api"))
		_, out, _ = warren("secret", "inspect", "db-password")
		Expect(out).To(MatchRegexp(`Version:\s+2 \(older kept for running tasks: 1\)`))
		Expect(out).To(MatchRegexp(`Size:\s+4 bytes`))

		code, _, errOut = warren("service", "update", "api", "--force-recreate")
		Expect(code).To(Equal(0), errOut)
		after := live("api", 2, func(t types.Container) bool { return t.ForceUpdate == 1 })
		for _, t := range after {
			Expect(before).NotTo(ContainElement(HaveField("ID", t.ID)))
			Expect(t.SecretVersionOf(t.Secrets[0])).To(Equal(2))
			Expect(t.ForceUpdate).To(Equal(uint64(1)))
		}
		_, out, _ = warren("secret", "inspect", "db-password")
		Expect(out).To(MatchRegexp(`Version:\s+2\n`))
	})

	It("rolls out a new image and environment, slot by slot", func() {
		code, _, errOut := warren("service", "create", "web", "--image", "busybox", "--replicas", "3")
		Expect(code).To(Equal(0), errOut)
		live("web", 3, func(types.Container) bool { return true })
		code, _, errOut = warren("service", "update", "web", "--image", "busybox:2", "--env-add", "MODE=fast", "--update-parallelism", "2")
		Expect(code).To(Equal(0), errOut)
		var slots []int
		for _, t := range live("web", 3, func(t types.Container) bool { return t.Image == "busybox:2" }) {
			Expect(t.Image).To(Equal("busybox:2"))
			Expect(t.Env).To(Equal([]string{"MODE=fast"}))
			slots = append(slots, t.Slot)
		}
		Expect(slots).To(ConsistOf(1, 2, 3))
	})

	DescribeTable("refuses what it cannot do, changing nothing",
		func(args []string, message string) {
			code, _, errOut := warren("service", "create", "web", "--image", "busybox")
			Expect(code).To(Equal(0), errOut)
			code, _, errOut = warren(append([]string{"service", "update"}, args...)...)
			Expect(code).To(Equal(1))
			Expect(errOut).To(ContainSubstring(message))
			_, out, _ := warren("service", "inspect", "web", "-o", "json")
			var svc types.Service
			Expect(json.Unmarshal([]byte(out), &svc)).To(Succeed())
			Expect(svc.Image).To(Equal("busybox"))
			Expect(svc.ForceUpdate).To(BeZero())
		},
		Entry("nothing to change", []string{"web"}, "nothing to change"),
		Entry("a service that does not exist", []string{"nope", "--force-recreate"}, "no service"),
		Entry("a secret that does not exist", []string{"web", "--secret-add", "nope", "--image", "x"}, "--secret-add nope"),
		Entry("an env without a value", []string{"web", "--env-add", "MODE"}, "use KEY=VALUE"),
	)
})
