package fake_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/backends/fake"
	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/runtimetest"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var epoch = typestest.Epoch

// defaultKnobs give containers a start and a stop that take time, so that
// specs see them pending and stopping.
var defaultKnobs = fake.Knobs{StartLatency: 2 * time.Second, StopLatency: time.Second}

var _ = runtimetest.DescribeRuntime("the fake runtime", func() runtimetest.Harness {
	clock := fake.NewClock(epoch)
	return runtimetest.Harness{
		Runtime: fake.NewRuntime(clock, defaultKnobs),
		Clock:   clock,
		Image:   "nginx:1.27",
		Await:   runtimetest.VirtualAwait(clock, 100*time.Millisecond, time.Minute),
	}
})

var _ = Describe("Runtime", func() {
	var (
		clock   *fake.Clock
		knobs   fake.Knobs
		task    *types.Container
		secrets map[string][]byte
		rt      *fake.Runtime
	)
	BeforeEach(func() {
		clock = fake.NewClock(epoch)
		knobs = defaultKnobs
		task = typestest.Container("task-1", "svc-1", "node-1")
		secrets = map[string][]byte{"db-password": []byte("s3cret")}
	})

	// start makes the runtime with the knobs as they are now and starts
	// task at epoch. Tables call it themselves, after setting knobs.
	start := func() {
		GinkgoHelper()
		clock.Set(epoch)
		rt = fake.NewRuntime(clock, knobs)
		Expect(rt.Start(task, secrets)).To(Succeed())
	}
	// at moves the clock to epoch+d and returns task-1's container then.
	at := func(d time.Duration) orchestrator.RuntimeContainer {
		GinkgoHelper()
		clock.Set(epoch.Add(d))
		cs, err := rt.Containers()
		Expect(err).NotTo(HaveOccurred())
		Expect(cs).To(HaveLen(1))
		return cs[0]
	}

	When("a task is started", func() {
		JustBeforeEach(start)

		It("is pending until StartLatency has passed, and running from then on", func() {
			c := at(2*time.Second - time.Nanosecond)
			Expect(c.State).To(Equal(types.ContainerPending))
			Expect(c.StartedAt).To(BeZero())
			Expect(c.Health).To(Equal(types.HealthUnknown))
			c = at(2 * time.Second)
			Expect(c.State).To(Equal(types.ContainerRunning))
			Expect(c.StartedAt).To(Equal(epoch.Add(2 * time.Second)))
			Expect(at(24 * time.Hour).State).To(Equal(types.ContainerRunning))
		})

		It("names its container the same way in every run", func() {
			again := fake.NewRuntime(clock, knobs)
			Expect(again.Start(task, nil)).To(Succeed())
			mine, _ := rt.Containers()
			theirs, _ := again.Containers()
			Expect(mine[0].RuntimeID).To(Equal("fake-task-1-1"))
			Expect(theirs[0].RuntimeID).To(Equal(mine[0].RuntimeID))
		})

		It("holds its own copy of the secrets while it is live", func() {
			secrets["db-password"][0] = 'X'
			Expect(rt.Secrets("task-1")).To(Equal(map[string][]byte{"db-password": []byte("s3cret")}))
			at(5 * time.Second)
			held := rt.Secrets("task-1")
			held["db-password"][0] = 'Y'
			Expect(rt.Secrets("task-1")).To(Equal(map[string][]byte{"db-password": []byte("s3cret")}))
			Expect(rt.Secrets("task-9")).To(BeNil())
		})

		It("drops the secrets when it has stopped, not when asked to stop", func() {
			at(5 * time.Second)
			Expect(rt.Stop("task-1", 10*time.Second)).To(Succeed())
			Expect(at(6*time.Second - time.Nanosecond).State).To(Equal(types.ContainerRunning))
			Expect(rt.Secrets("task-1")).NotTo(BeEmpty())
			Expect(at(6 * time.Second).State).To(Equal(types.ContainerShutdown))
			Expect(rt.Secrets("task-1")).To(BeNil())
		})

		It("is never started if stopped while pending", func() {
			at(time.Second)
			Expect(rt.Stop("task-1", 10*time.Second)).To(Succeed())
			c := at(time.Second)
			Expect(c.State).To(Equal(types.ContainerShutdown))
			Expect(c.FinishedAt).To(Equal(epoch.Add(time.Second)))
			Expect(c.ExitCode).To(Equal(0))
			c = at(time.Hour)
			Expect(c.State).To(Equal(types.ContainerShutdown))
			Expect(c.StartedAt).To(BeZero())
			Expect(rt.Secrets("task-1")).To(BeNil())
		})

		It("cannot be removed while it is stopping", func() {
			at(5 * time.Second)
			Expect(rt.Stop("task-1", 10*time.Second)).To(Succeed())
			at(5500 * time.Millisecond)
			Expect(rt.Remove("task-1")).To(MatchError(ContainSubstring("task-1 is running: stop it before removing it")))
			at(6 * time.Second)
			Expect(rt.Remove("task-1")).To(Succeed())
		})

		It("is failed at once by Crash, with the exit code given", func() {
			at(5 * time.Second)
			Expect(rt.Crash("task-1", 139)).To(Succeed())
			c := at(5 * time.Second)
			Expect(c.State).To(Equal(types.ContainerFailed))
			Expect(c.ExitCode).To(Equal(139))
			Expect(c.StartedAt).To(Equal(epoch.Add(2 * time.Second)))
			Expect(c.FinishedAt).To(Equal(epoch.Add(5 * time.Second)))
			Expect(rt.Crash("task-1", 1)).To(MatchError(ContainSubstring("already failed")))
			Expect(rt.Secrets("task-1")).To(BeNil())
		})

		It("crashes before it runs if Crash comes while it is pending", func() {
			at(time.Second)
			Expect(rt.Crash("task-1", 127)).To(Succeed())
			c := at(time.Hour)
			Expect(c.State).To(Equal(types.ContainerFailed))
			Expect(c.ExitCode).To(Equal(127))
			Expect(c.StartedAt).To(BeZero())
			Expect(c.FinishedAt).To(Equal(epoch.Add(time.Second)))
		})

		It("completes if Crash gives exit code 0", func() {
			at(5 * time.Second)
			Expect(rt.Crash("task-1", 0)).To(Succeed())
			Expect(at(5 * time.Second).State).To(Equal(types.ContainerComplete))
		})

		It("fails on a Crash while it is stopping, before the stop ends", func() {
			at(5 * time.Second)
			Expect(rt.Stop("task-1", 10*time.Second)).To(Succeed())
			at(5500 * time.Millisecond)
			Expect(rt.Crash("task-1", 2)).To(Succeed())
			c := at(time.Minute)
			Expect(c.State).To(Equal(types.ContainerFailed))
			Expect(c.FinishedAt).To(Equal(epoch.Add(5500 * time.Millisecond)))
		})

		It("reports Crash of an unknown task as ErrNoContainer", func() {
			err := rt.Crash("task-9", 1)
			Expect(errors.Is(err, orchestrator.ErrNoContainer)).To(BeTrue(), "%v", err)
		})
	})

	When("the container exits on its own after CrashAfter", func() {
		DescribeTable("ends complete or failed by its exit code, at the instant it exits",
			func(exitCode int, want types.ContainerState) {
				knobs.CrashAfter, knobs.ExitCode = 5*time.Second, exitCode
				start()
				Expect(at(7*time.Second - time.Nanosecond).State).To(Equal(types.ContainerRunning))
				c := at(7 * time.Second)
				Expect(c.State).To(Equal(want))
				Expect(c.ExitCode).To(Equal(exitCode))
				Expect(c.StartedAt).To(Equal(epoch.Add(2 * time.Second)))
				Expect(c.FinishedAt).To(Equal(epoch.Add(7 * time.Second)))
				Expect(c.Health).To(Equal(types.HealthUnknown))
				Expect(rt.Secrets("task-1")).To(BeNil())
			},
			Entry("exit code 0: complete", 0, types.ContainerComplete),
			Entry("exit code 1: failed", 1, types.ContainerFailed),
			Entry("exit code 3: failed", 3, types.ContainerFailed),
		)

		It("exits on its own if that comes before a stop would end", func() {
			knobs.CrashAfter, knobs.ExitCode, knobs.StopLatency = 5*time.Second, 3, 2*time.Second
			start()
			at(6 * time.Second)
			Expect(rt.Stop("task-1", 10*time.Second)).To(Succeed())
			c := at(time.Minute)
			Expect(c.State).To(Equal(types.ContainerFailed))
			Expect(c.ExitCode).To(Equal(3))
			Expect(c.FinishedAt).To(Equal(epoch.Add(7 * time.Second)))
		})
	})

	When("a running container is stopped", func() {
		DescribeTable("shuts down after StopLatency, or is killed at the timeout",
			func(change func(k *fake.Knobs), timeout, wantAfter time.Duration, wantExitCode int) {
				change(&knobs)
				start()
				at(5 * time.Second)
				Expect(rt.Stop("task-1", timeout)).To(Succeed())
				if wantAfter > 0 {
					Expect(at(5*time.Second + wantAfter - time.Nanosecond).State).To(Equal(types.ContainerRunning))
				}
				c := at(5*time.Second + wantAfter)
				Expect(c.State).To(Equal(types.ContainerShutdown))
				Expect(c.FinishedAt).To(Equal(epoch.Add(5*time.Second + wantAfter)))
				Expect(c.ExitCode).To(Equal(wantExitCode))
			},
			Entry("exits on SIGTERM within the timeout", func(k *fake.Knobs) { k.StopLatency = time.Second },
				10*time.Second, time.Second, 0),
			Entry("too slow for the timeout: killed", func(k *fake.Knobs) { k.StopLatency = 30 * time.Second },
				10*time.Second, 10*time.Second, fake.ExitKilled),
			Entry("ignores SIGTERM: killed at the timeout", func(k *fake.Knobs) { k.IgnoreSIGTERM = true },
				10*time.Second, 10*time.Second, fake.ExitKilled),
			Entry("no timeout: killed at once", func(k *fake.Knobs) { k.StopLatency = time.Second },
				time.Duration(0), time.Duration(0), fake.ExitKilled),
			Entry("a negative timeout counts as none", func(k *fake.Knobs) { k.StopLatency = time.Second },
				-time.Second, time.Duration(0), fake.ExitKilled),
		)

		It("is killed sooner by a second stop with a shorter timeout, never later", func() {
			knobs.IgnoreSIGTERM = true
			start()
			at(5 * time.Second)
			Expect(rt.Stop("task-1", 30*time.Second)).To(Succeed())
			at(6 * time.Second)
			Expect(rt.Stop("task-1", 4*time.Second)).To(Succeed())
			Expect(rt.Stop("task-1", time.Hour)).To(Succeed())
			Expect(at(10*time.Second - time.Nanosecond).State).To(Equal(types.ContainerRunning))
			c := at(10 * time.Second)
			Expect(c.State).To(Equal(types.ContainerShutdown))
			Expect(c.ExitCode).To(Equal(fake.ExitKilled))
		})
	})

	When("a container runs", func() {
		DescribeTable("reports its health from the Unhealthy knob and the task's health check",
			func(unhealthy, checked bool, want types.HealthStatus) {
				knobs.Unhealthy = unhealthy
				if checked {
					task.HealthCheck = &types.HealthCheck{Type: types.HealthCheckTCP, Port: 80, Interval: time.Second}
				}
				start()
				Expect(at(time.Second).Health).To(Equal(types.HealthUnknown), "while pending")
				Expect(at(3 * time.Second).Health).To(Equal(want))
			},
			Entry("no check: unknown", false, false, types.HealthUnknown),
			Entry("a check: healthy", false, true, types.HealthHealthy),
			Entry("unhealthy, no check: unhealthy", true, false, types.HealthUnhealthy),
			Entry("unhealthy, a check: unhealthy", true, true, types.HealthUnhealthy),
		)
	})

	When("the task's image cannot be pulled", func() {
		BeforeEach(func() { knobs.MissingImages = []string{"nginx:1.27"} })
		JustBeforeEach(start)

		It("takes the task and fails its container at once, holding no secret", func() {
			c := at(0)
			Expect(c.State).To(Equal(types.ContainerFailed))
			Expect(c.Error).To(Equal("image not found: nginx:1.27"))
			Expect(c.StartedAt).To(BeZero())
			Expect(c.FinishedAt).To(Equal(epoch))
			Expect(c.RuntimeID).NotTo(BeEmpty())
			Expect(rt.Secrets("task-1")).To(BeNil())
			Expect(at(time.Hour).State).To(Equal(types.ContainerFailed))
		})

		It("can remove the failed container without a stop", func() {
			Expect(rt.Remove("task-1")).To(Succeed())
			Expect(rt.Containers()).To(BeEmpty())
		})
	})

	When("the knobs change", func() {
		JustBeforeEach(start)

		It("applies them to containers started afterwards only", func() {
			missing := []string{"redis:7"}
			rt.SetKnobs(fake.Knobs{CrashAfter: time.Second, ExitCode: 2, MissingImages: missing})
			missing[0] = "nginx:1.27" // the runtime keeps its own copy
			later := typestest.Container("task-2", "svc-1", "node-1")
			Expect(rt.Start(later, nil)).To(Succeed())
			clock.Set(epoch.Add(10 * time.Second))
			cs, err := rt.Containers()
			Expect(err).NotTo(HaveOccurred())
			Expect(cs).To(HaveLen(2))
			Expect(cs[0].State).To(Equal(types.ContainerRunning))
			Expect(cs[1].State).To(Equal(types.ContainerFailed))
			Expect(cs[1].ExitCode).To(Equal(2))
			Expect(cs[1].FinishedAt).To(Equal(epoch.Add(time.Second)))
		})
	})

	When("Start is given no task", func() {
		It("refuses, and creates nothing", func() {
			rt = fake.NewRuntime(clock, knobs)
			Expect(rt.Start(nil, nil)).To(MatchError(ContainSubstring("no task")))
			Expect(rt.Containers()).To(BeEmpty())
		})
	})

	When("used from several goroutines", func() {
		It("loses no container and keeps them ordered", func() {
			rt = fake.NewRuntime(clock, knobs)
			var wg sync.WaitGroup
			for g := range 8 {
				wg.Go(func() {
					defer GinkgoRecover()
					for i := range 25 {
						Expect(rt.Start(typestest.Container(fmt.Sprintf("task-%d-%02d", g, i), "svc-1", "node-1"), nil)).To(Succeed())
						_, err := rt.Containers()
						Expect(err).NotTo(HaveOccurred())
						clock.Advance(time.Millisecond)
					}
				})
			}
			wg.Wait()
			cs, err := rt.Containers()
			Expect(err).NotTo(HaveOccurred())
			Expect(cs).To(HaveLen(200))
			Expect(slices.IsSortedFunc(cs, func(a, b orchestrator.RuntimeContainer) int {
				return strings.Compare(a.TaskID, b.TaskID)
			})).To(BeTrue())
		})
	})
})

var _ = Describe("VirtualAwait", func() {
	var clock *fake.Clock
	BeforeEach(func() { clock = fake.NewClock(epoch) })

	When("the condition comes true within the limit", func() {
		It("advances the clock only until it does", func() {
			await := runtimetest.VirtualAwait(clock, 100*time.Millisecond, time.Minute)
			await("a second passed", func() bool { return !clock.Now().Before(epoch.Add(time.Second)) })
			Expect(clock.Now()).To(Equal(epoch.Add(time.Second)))
		})
	})

	When("the condition never comes true", func() {
		It("fails the spec, naming what it waited for, after the limit", func() {
			await := runtimetest.VirtualAwait(clock, time.Second, 10*time.Second)
			failures := InterceptGomegaFailures(func() { await("pigs fly", func() bool { return false }) })
			Expect(failures).To(ConsistOf(ContainSubstring("pigs fly: still not so after 10s of virtual time")))
			Expect(clock.Now()).To(Equal(epoch.Add(10 * time.Second)))
		})
	})
})
