// Package runtimetest is the contract every orchestrator.Runtime must meet,
// as a Ginkgo suite: the fake Runtime runs it in virtual time, the
// containerd Runtime in real time. The specs never wait themselves; they ask
// the Harness to, so the same spec advances a fake clock or polls a real
// runtime.
package runtimetest

import (
	"errors"
	"fmt"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/warren-orchestrator/warren/orchestrator"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// Harness is one Runtime under test and what the contract needs around it.
type Harness struct {
	// Runtime is the runtime under test, holding no container.
	Runtime orchestrator.Runtime
	// Clock is the time the runtime stamps StartedAt and FinishedAt from.
	Clock orchestrator.Clock
	// Image is an image the runtime can run, that keeps running until it
	// is stopped and exits on SIGTERM within StopTimeout.
	Image string
	// Await returns once cond holds, and fails the spec naming what if it
	// does not within the runtime's bound: see VirtualAwait and RealAwait.
	Await func(what string, cond func() bool)
}

// StopTimeout is the timeout the specs give Stop.
const StopTimeout = 10 * time.Second

// DescribeRuntime registers the contract specs for the runtime that
// newHarness makes. newHarness is called in a BeforeEach, once per spec, so
// it may register a DeferCleanup that removes what the spec left behind.
// args are passed on to Describe: decorators such as Label("integ").
func DescribeRuntime(name string, newHarness func() Harness, args ...any) bool {
	return Describe("Runtime contract on "+name, append(args, func() {
		var (
			h  Harness
			rt orchestrator.Runtime
		)
		BeforeEach(func() {
			h = newHarness()
			rt = h.Runtime
		})

		task := func(id string) *types.Container {
			t := typestest.Container(id, "svc-1", "node-1")
			t.Image = h.Image
			return t
		}
		list := func() []orchestrator.RuntimeContainer {
			GinkgoHelper()
			cs, err := rt.Containers()
			Expect(err).NotTo(HaveOccurred())
			return cs
		}
		find := func(id string) (orchestrator.RuntimeContainer, bool) {
			GinkgoHelper()
			cs := list()
			i := slices.IndexFunc(cs, func(c orchestrator.RuntimeContainer) bool { return c.TaskID == id })
			if i < 0 {
				return orchestrator.RuntimeContainer{}, false
			}
			return cs[i], true
		}
		// in is a condition for Await; an error from Containers counts as
		// not yet, so that a runtime's hiccup shows up as the state it
		// never reached.
		in := func(id string, state types.ContainerState) func() bool {
			var last string // what a failed wait saw last, in the spec's output
			DeferCleanup(func() {
				if last != "" && CurrentSpecReport().Failed() {
					GinkgoWriter.Printf("last seen of %s: %s\n", id, last)
				}
			})
			return func() bool {
				cs, err := rt.Containers()
				if err != nil {
					last = "Containers: " + err.Error()
					return false
				}
				i := slices.IndexFunc(cs, func(c orchestrator.RuntimeContainer) bool { return c.TaskID == id })
				if i < 0 {
					last = "not listed"
					return false
				}
				last = fmt.Sprintf("%+v", cs[i])
				return cs[i].State == state
			}
		}
		startRunning := func(id string) {
			GinkgoHelper()
			Expect(rt.Start(task(id), nil)).To(Succeed())
			h.Await(id+" running", in(id, types.ContainerRunning))
		}

		When("a task is started", func() {
			var before time.Time
			JustBeforeEach(func() {
				before = h.Clock.Now()
				Expect(rt.Start(task("task-1"), map[string][]byte{"db-password": []byte("s3cret")})).To(Succeed())
			})

			It("is pending, then running, with a runtime ID and its start time", func() {
				var seen []types.ContainerState
				// No assertion in here: Await may poll it from Eventually.
				observe := func() bool {
					cs, err := rt.Containers()
					if err != nil {
						return false
					}
					i := slices.IndexFunc(cs, func(c orchestrator.RuntimeContainer) bool { return c.TaskID == "task-1" })
					state := types.ContainerState("not listed")
					if i >= 0 {
						state = cs[i].State
					}
					if len(seen) == 0 || seen[len(seen)-1] != state {
						seen = append(seen, state)
					}
					return state == types.ContainerRunning
				}
				h.Await("task-1 running", observe)
				// A real runtime may be quicker than the first look.
				Expect(seen).To(Or(
					Equal([]types.ContainerState{types.ContainerPending, types.ContainerRunning}),
					Equal([]types.ContainerState{types.ContainerRunning})))
				c, _ := find("task-1")
				Expect(c.RuntimeID).NotTo(BeEmpty())
				Expect(c.StartedAt).To(BeTemporally(">=", before))
				Expect(c.StartedAt).To(BeTemporally("<=", h.Clock.Now()))
				Expect(c.FinishedAt).To(BeZero())
				Expect(c.Error).To(BeEmpty())
			})

			It("refuses to start it again and keeps the first container", func() {
				first, ok := find("task-1")
				Expect(ok).To(BeTrue())
				err := rt.Start(task("task-1"), nil)
				Expect(errors.Is(err, orchestrator.ErrContainerExists)).To(BeTrue(), "%v", err)
				Expect(err).To(MatchError(ContainSubstring("task-1")))
				cs := list()
				Expect(cs).To(HaveLen(1))
				Expect(cs[0].RuntimeID).To(Equal(first.RuntimeID))
			})

			It("can be stopped before it runs, and is shut down", func() {
				Expect(rt.Stop("task-1", StopTimeout)).To(Succeed())
				h.Await("task-1 shut down", in("task-1", types.ContainerShutdown))
				c, _ := find("task-1")
				Expect(c.FinishedAt).To(BeTemporally(">=", before))
			})
		})

		When("a running task is stopped", func() {
			var started orchestrator.RuntimeContainer
			JustBeforeEach(func() {
				startRunning("task-1")
				started, _ = find("task-1")
				Expect(rt.Stop("task-1", StopTimeout)).To(Succeed())
			})

			It("shuts down, finishing after it started", func() {
				h.Await("task-1 shut down", in("task-1", types.ContainerShutdown))
				c, _ := find("task-1")
				Expect(c.RuntimeID).To(Equal(started.RuntimeID))
				Expect(c.StartedAt).To(Equal(started.StartedAt))
				Expect(c.FinishedAt).To(BeTemporally(">=", c.StartedAt))
				Expect(c.FinishedAt).To(BeTemporally("<=", h.Clock.Now()))
			})

			It("takes another stop and stays as it was", func() {
				h.Await("task-1 shut down", in("task-1", types.ContainerShutdown))
				first, _ := find("task-1")
				Expect(rt.Stop("task-1", StopTimeout)).To(Succeed())
				again, _ := find("task-1")
				Expect(again).To(Equal(first))
			})

			It("can be removed, and is no longer listed", func() {
				h.Await("task-1 shut down", in("task-1", types.ContainerShutdown))
				Expect(rt.Remove("task-1")).To(Succeed())
				Expect(list()).To(BeEmpty())
				err := rt.Remove("task-1")
				Expect(errors.Is(err, orchestrator.ErrNoContainer)).To(BeTrue(), "%v", err)
			})

			It("can be started again once removed", func() {
				h.Await("task-1 shut down", in("task-1", types.ContainerShutdown))
				Expect(rt.Remove("task-1")).To(Succeed())
				startRunning("task-1")
				c, _ := find("task-1")
				Expect(c.FinishedAt).To(BeZero())
			})
		})

		When("a running task is removed without a stop", func() {
			It("refuses, and the container keeps running", func() {
				startRunning("task-1")
				err := rt.Remove("task-1")
				Expect(err).To(HaveOccurred())
				Expect(errors.Is(err, orchestrator.ErrNoContainer)).To(BeFalse(), "%v", err)
				Expect(err).To(MatchError(ContainSubstring("stop")))
				c, ok := find("task-1")
				Expect(ok).To(BeTrue())
				Expect(c.State).To(Equal(types.ContainerRunning))
			})
		})

		When("the runtime has no container for the task", func() {
			DescribeTable("reports ErrNoContainer, naming the task",
				func(call func(rt orchestrator.Runtime) error) {
					startRunning("task-1") // another task's container must not count
					err := call(rt)
					Expect(errors.Is(err, orchestrator.ErrNoContainer)).To(BeTrue(), "%v", err)
					Expect(err).To(MatchError(ContainSubstring("task-9")))
					Expect(list()).To(HaveLen(1))
				},
				Entry("on Stop", func(rt orchestrator.Runtime) error { return rt.Stop("task-9", StopTimeout) }),
				Entry("on Remove", func(rt orchestrator.Runtime) error { return rt.Remove("task-9") }),
			)
		})

		When("several tasks are started", func() {
			It("lists them in task ID order, each with its own runtime ID", func() {
				for _, id := range []string{"task-c", "task-a", "task-d", "task-b"} {
					Expect(rt.Start(task(id), nil)).To(Succeed())
				}
				var ids, runtimeIDs []string
				for _, c := range list() {
					ids = append(ids, c.TaskID)
					runtimeIDs = append(runtimeIDs, c.RuntimeID)
				}
				Expect(ids).To(Equal([]string{"task-a", "task-b", "task-c", "task-d"}))
				slices.Sort(runtimeIDs)
				Expect(slices.Compact(runtimeIDs)).To(HaveLen(4))
			})
		})

		When("a task is invalid", func() {
			DescribeTable("refuses it and creates no container",
				func(spoil func(t *types.Container)) {
					t := task("task-1")
					spoil(t)
					err := rt.Start(t, nil)
					Expect(errors.Is(err, types.ErrInvalid)).To(BeTrue(), "%v", err)
					Expect(list()).To(BeEmpty())
				},
				Entry("an ID with a slash", func(t *types.Container) { t.ID = "task/1" }),
				Entry("no image", func(t *types.Container) { t.Image = "" }),
				Entry("an image that is no reference", func(t *types.Container) { t.Image = "Not An Image" }),
				Entry("an environment entry that is not KEY=VALUE", func(t *types.Container) { t.Env = []string{"JUSTAKEY"} }),
				Entry("a mount at a relative path", func(t *types.Container) {
					t.Mounts = []*types.VolumeMount{{Source: "data", Target: "var/lib/data"}}
				}),
			)
		})
	})...)
}
