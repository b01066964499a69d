// Package statetest is the contract every state.KV must meet, as a Ginkgo
// suite over the typed Store: the in-memory KV and the BoltDB KV both run it.
package statetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"

	. "github.com/onsi/ginkgo/v2" //nolint:revive // Ginkgo's DSL reads best unqualified
	. "github.com/onsi/gomega"    //nolint:revive

	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// DescribeStore registers the contract specs for the KV made by newKV. Each
// spec gets a fresh, empty KV and closes it afterwards.
func DescribeStore(name string, newKV func() state.KV) bool {
	return Describe("Store contract on "+name, func() {
		var (
			kv    state.KV
			store state.Store
		)
		BeforeEach(func() {
			kv = newKV()
			store = state.New(kv)
			DeferCleanup(func() { _ = store.Close() })
		})

		Describe("records of every kind", func() {
			DescribeTable("are stored, read back, listed and deleted",
				func(k kindOps) {
					a, b := k.make("b-2", "beta"), k.make("a-1", "alpha")
					Expect(k.put(store, a)).To(Succeed())
					Expect(k.put(store, b)).To(Succeed())

					got, err := k.get(store, "b-2")
					Expect(err).NotTo(HaveOccurred())
					Expect(got).To(Equal(k.stamp(a)))

					ids, err := k.listIDs(store)
					Expect(err).NotTo(HaveOccurred())
					Expect(ids).To(Equal([]string{"a-1", "b-2"}))

					Expect(k.del(store, "b-2")).To(Succeed())
					_, err = k.get(store, "b-2")
					Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
					Expect(err).To(MatchError(ContainSubstring(`no %s with ID "b-2"`, k.kind)))
					ids, err = k.listIDs(store)
					Expect(err).NotTo(HaveOccurred())
					Expect(ids).To(Equal([]string{"a-1"}))
				},
				kindEntries(),
			)

			DescribeTable("are replaced by an upsert with the same ID",
				func(k kindOps) {
					Expect(k.put(store, k.make("x-1", "first"))).To(Succeed())
					second := k.make("x-1", "second")
					Expect(k.put(store, second)).To(Succeed())
					got, err := k.get(store, "x-1")
					Expect(err).NotTo(HaveOccurred())
					Expect(got).To(Equal(k.stamp(second)))
					ids, _ := k.listIDs(store)
					Expect(ids).To(Equal([]string{"x-1"}))
				},
				kindEntries(),
			)

			DescribeTable("are known to exist exactly while they are stored",
				func(k kindOps) {
					has := func(id string) bool {
						ok, err := store.Has(k.kind, id)
						Expect(err).NotTo(HaveOccurred())
						return ok
					}
					Expect(has("h-1")).To(BeFalse())
					Expect(k.put(store, k.make("h-1", "here"))).To(Succeed())
					Expect(has("h-1")).To(BeTrue())
					Expect(has("h-2")).To(BeFalse())
					Expect(store.View(func(r state.Reader) error {
						ok, err := r.Has(k.kind, "h-1")
						Expect(ok).To(BeTrue())
						return err
					})).To(Succeed())
					Expect(k.del(store, "h-1")).To(Succeed())
					Expect(has("h-1")).To(BeFalse())
				},
				kindEntries(),
			)

			DescribeTable("refuse to delete what is not there",
				func(k kindOps) {
					err := k.del(store, "nope")
					Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
				},
				kindEntries(),
			)

			DescribeTable("are never stored when invalid",
				func(k kindOps) {
					bad := k.make("bad-1", "Not A Name")
					if k.kind == types.KindNode || k.kind == types.KindContainer {
						bad = k.make("bad/1", "bad")
					}
					err := k.put(store, bad)
					Expect(errors.Is(err, types.ErrInvalid)).To(BeTrue(), "%v", err)
					ids, err := k.listIDs(store)
					Expect(err).NotTo(HaveOccurred())
					Expect(ids).To(BeEmpty())
				},
				kindEntries(),
			)

			It("lists in ID order whatever the insertion order", func() {
				r := rand.New(rand.NewPCG(1, 2))
				var want []string
				for i := range 50 {
					want = append(want, fmt.Sprintf("node-%03d", i))
				}
				order := append([]string(nil), want...)
				r.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				for _, id := range order {
					Expect(store.UpdateNode(typestest.Node(id))).To(Succeed())
				}
				ns, err := store.ListNodes()
				Expect(err).NotTo(HaveOccurred())
				var got []string
				for _, n := range ns {
					got = append(got, n.ID)
				}
				Expect(got).To(Equal(want))
			})

			It("hands out copies: changing a returned record changes nothing stored", func() {
				Expect(store.UpdateService(typestest.Service("svc-1", "web"))).To(Succeed())
				s, err := store.GetService("svc-1")
				Expect(err).NotTo(HaveOccurred())
				s.Replicas = 99
				s.Env[0] = "CHANGED=1"
				again, err := store.GetService("svc-1")
				Expect(err).NotTo(HaveOccurred())
				Expect(again.Replicas).To(Equal(3))
				Expect(again.Env[0]).To(Equal("ENV=production"))
			})
		})

		Describe("the cluster record", func() {
			stored := func(c *types.Cluster) *types.Cluster {
				c = types.Clone(c)
				c.SchemaVersion = types.SchemaVersion
				return c
			}

			It("is missing from a new store", func() {
				_, err := store.GetCluster()
				Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
				var nf *state.NotFoundError
				Expect(errors.As(err, &nf)).To(BeTrue())
				Expect(nf.Kind).To(Equal(types.KindCluster))
				Expect(err).To(MatchError(ContainSubstring("no cluster record yet")))
			})

			It("is stored, read back, and replaced by an upsert", func() {
				c := typestest.Cluster("cluster-1")
				Expect(store.UpdateCluster(c)).To(Succeed())
				got, err := store.GetCluster()
				Expect(err).NotTo(HaveOccurred())
				Expect(got).To(Equal(stored(c)))

				c.WorkerToken, c.ManagerToken = "worker-token-2", "manager-token-2"
				Expect(store.UpdateCluster(c)).To(Succeed())
				got, err = store.GetCluster()
				Expect(err).NotTo(HaveOccurred())
				Expect(got).To(Equal(stored(c)))
			})

			It("keeps its ID: a record of another ID is refused and changes nothing", func() {
				first := typestest.Cluster("cluster-1")
				Expect(store.UpdateCluster(first)).To(Succeed())
				err := store.UpdateCluster(typestest.Cluster("cluster-2"))
				Expect(errors.Is(err, types.ErrInvalid)).To(BeTrue(), "%v", err)
				Expect(err).To(MatchError(ContainSubstring(`the cluster's ID cannot change: this store holds cluster "cluster-1"`)))
				got, err := store.GetCluster()
				Expect(err).NotTo(HaveOccurred())
				Expect(got).To(Equal(stored(first)))
			})

			It("is never stored when invalid", func() {
				bad := typestest.Cluster("cluster-1")
				bad.EncryptionSalt = bad.EncryptionSalt[:8]
				err := store.UpdateCluster(bad)
				Expect(errors.Is(err, types.ErrInvalid)).To(BeTrue(), "%v", err)
				Expect(err).To(MatchError(ContainSubstring("EncryptionSalt")))
				_, err = store.GetCluster()
				Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
			})

			It("hands out copies: changing a returned record changes nothing stored", func() {
				Expect(store.UpdateCluster(typestest.Cluster("cluster-1"))).To(Succeed())
				c, err := store.GetCluster()
				Expect(err).NotTo(HaveOccurred())
				c.CACert[0], c.EncryptionSalt[0] = 'X', 0
				again, err := store.GetCluster()
				Expect(err).NotTo(HaveOccurred())
				Expect(again).To(Equal(stored(typestest.Cluster("cluster-1"))))
			})

			It("commits with the rest of a transaction, or not at all", func() {
				boom := errors.New("boom")
				err := store.Update(func(tx state.Tx) error {
					Expect(tx.UpdateCluster(typestest.Cluster("cluster-1"))).To(Succeed())
					c, err := tx.GetCluster() // the transaction reads its own write
					Expect(err).NotTo(HaveOccurred())
					Expect(c.ID).To(Equal("cluster-1"))
					return boom
				})
				Expect(err).To(MatchError(boom))
				_, err = store.GetCluster()
				Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())

				Expect(store.Update(func(tx state.Tx) error {
					if err := tx.UpdateNode(typestest.Node("node-1")); err != nil {
						return err
					}
					return tx.UpdateCluster(typestest.Cluster("cluster-1"))
				})).To(Succeed())
				c, err := store.GetCluster()
				Expect(err).NotTo(HaveOccurred())
				Expect(c.ID).To(Equal("cluster-1"))
			})

			It("is refused, not guessed, when the bucket holds two", func() {
				Expect(store.UpdateCluster(typestest.Cluster("cluster-1"))).To(Succeed())
				b, err := types.Encode(typestest.Cluster("cluster-2"))
				Expect(err).NotTo(HaveOccurred())
				Expect(kv.Update(func(tx state.KVTx) error {
					return tx.Put(types.KindCluster.Bucket(), []byte("cluster-2"), b)
				})).To(Succeed())
				_, err = store.GetCluster()
				Expect(err).To(MatchError(ContainSubstring("holds 2 records (cluster-1, cluster-2) where there may be one")))
				Expect(store.UpdateCluster(typestest.Cluster("cluster-1"))).To(MatchError(ContainSubstring("where there may be one")))
			})
		})

		Describe("look-ups by name", func() {
			DescribeTable("find the record holding the name",
				func(k namedOps) {
					Expect(k.put(store, k.make("id-1", "one"))).To(Succeed())
					Expect(k.put(store, k.make("id-2", "two"))).To(Succeed())
					got, err := k.byName(store, "two")
					Expect(err).NotTo(HaveOccurred())
					Expect(got.RecordID()).To(Equal("id-2"))
					_, err = k.byName(store, "three")
					Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
					Expect(err).To(MatchError(ContainSubstring(`no %s named "three"`, k.kind)))
				},
				namedEntries(),
			)

			DescribeTable("follow a rename and free the old name",
				func(k namedOps) {
					Expect(k.put(store, k.make("id-1", "old"))).To(Succeed())
					Expect(k.put(store, k.make("id-1", "new"))).To(Succeed())
					_, err := k.byName(store, "old")
					Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
					got, err := k.byName(store, "new")
					Expect(err).NotTo(HaveOccurred())
					Expect(got.RecordID()).To(Equal("id-1"))
					Expect(k.put(store, k.make("id-2", "old"))).To(Succeed())
				},
				namedEntries(),
			)

			DescribeTable("refuse a name held by another record and change nothing",
				func(k namedOps) {
					Expect(k.put(store, k.make("id-1", "taken"))).To(Succeed())
					Expect(k.put(store, k.make("id-2", "free"))).To(Succeed())
					err := k.put(store, k.make("id-2", "taken"))
					Expect(errors.Is(err, state.ErrNameTaken)).To(BeTrue())
					Expect(err).To(MatchError(ContainSubstring(`name "taken" is already used by id-1`)))
					got, err := k.byName(store, "free")
					Expect(err).NotTo(HaveOccurred())
					Expect(got.RecordID()).To(Equal("id-2"))
					got, err = k.byName(store, "taken")
					Expect(err).NotTo(HaveOccurred())
					Expect(got.RecordID()).To(Equal("id-1"))
				},
				namedEntries(),
			)

			DescribeTable("forget a deleted record's name",
				func(k namedOps) {
					Expect(k.put(store, k.make("id-1", "gone"))).To(Succeed())
					Expect(k.kindOps.del(store, "id-1")).To(Succeed())
					_, err := k.byName(store, "gone")
					Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
					Expect(k.put(store, k.make("id-2", "gone"))).To(Succeed())
				},
				namedEntries(),
			)
		})

		Describe("containers by service and by node", func() {
			BeforeEach(func() {
				for _, c := range []*types.Container{
					typestest.Container("c-3", "svc-a", "node-1"),
					typestest.Container("c-1", "svc-a", "node-2"),
					typestest.Container("c-2", "svc-b", "node-1"),
					typestest.Container("c-4", "svc-a", ""),
				} {
					Expect(store.UpdateContainer(c)).To(Succeed())
				}
			})

			It("lists a service's containers in ID order", func() {
				Expect(containerIDs(store.ListContainersByService("svc-a"))).To(Equal([]string{"c-1", "c-3", "c-4"}))
				Expect(containerIDs(store.ListContainersByService("svc-b"))).To(Equal([]string{"c-2"}))
				Expect(containerIDs(store.ListContainersByService("svc"))).To(BeEmpty())
			})

			It("lists a node's containers, leaving out unscheduled ones", func() {
				Expect(containerIDs(store.ListContainersByNode("node-1"))).To(Equal([]string{"c-2", "c-3"}))
				Expect(containerIDs(store.ListContainersByNode(""))).To(BeEmpty())
			})

			It("follows a container that moves node and service", func() {
				c, err := store.GetContainer("c-3")
				Expect(err).NotTo(HaveOccurred())
				c.NodeID, c.ServiceID = "node-2", "svc-b"
				Expect(store.UpdateContainer(c)).To(Succeed())
				Expect(containerIDs(store.ListContainersByNode("node-1"))).To(Equal([]string{"c-2"}))
				Expect(containerIDs(store.ListContainersByNode("node-2"))).To(Equal([]string{"c-1", "c-3"}))
				Expect(containerIDs(store.ListContainersByService("svc-a"))).To(Equal([]string{"c-1", "c-4"}))
				Expect(containerIDs(store.ListContainersByService("svc-b"))).To(Equal([]string{"c-2", "c-3"}))
			})

			It("indexes a container when it is scheduled and forgets it when deleted", func() {
				c, _ := store.GetContainer("c-4")
				c.NodeID = "node-1"
				Expect(store.UpdateContainer(c)).To(Succeed())
				Expect(containerIDs(store.ListContainersByNode("node-1"))).To(Equal([]string{"c-2", "c-3", "c-4"}))
				Expect(store.DeleteContainer("c-3")).To(Succeed())
				Expect(containerIDs(store.ListContainersByNode("node-1"))).To(Equal([]string{"c-2", "c-4"}))
				Expect(containerIDs(store.ListContainersByService("svc-a"))).To(Equal([]string{"c-1", "c-4"}))
			})
		})

		Describe("transactions", func() {
			It("commit a service and its containers together", func() {
				err := store.Update(func(tx state.Tx) error {
					if err := tx.UpdateService(typestest.Service("svc-1", "web")); err != nil {
						return err
					}
					for i := range 3 {
						if err := tx.UpdateContainer(typestest.Container(fmt.Sprintf("c-%d", i), "svc-1", "node-1")); err != nil {
							return err
						}
					}
					// The transaction reads its own writes.
					cs, err := tx.ListContainersByService("svc-1")
					Expect(cs).To(HaveLen(3))
					return err
				})
				Expect(err).NotTo(HaveOccurred())
				Expect(containerIDs(store.ListContainersByService("svc-1"))).To(HaveLen(3))
				s, err := store.GetServiceByName("web")
				Expect(err).NotTo(HaveOccurred())
				Expect(s.ID).To(Equal("svc-1"))
			})

			It("commit nothing, indexes included, when fn fails", func() {
				Expect(store.UpdateService(typestest.Service("svc-0", "before"))).To(Succeed())
				boom := errors.New("boom")
				err := store.Update(func(tx state.Tx) error {
					Expect(tx.UpdateService(typestest.Service("svc-1", "web"))).To(Succeed())
					Expect(tx.UpdateContainer(typestest.Container("c-1", "svc-1", "node-1"))).To(Succeed())
					Expect(tx.DeleteService("svc-0")).To(Succeed())
					return boom
				})
				Expect(err).To(MatchError(boom))
				_, err = store.GetServiceByName("web")
				Expect(errors.Is(err, state.ErrNotFound)).To(BeTrue())
				Expect(containerIDs(store.ListContainersByNode("node-1"))).To(BeEmpty())
				s, err := store.GetServiceByName("before")
				Expect(err).NotTo(HaveOccurred())
				Expect(s.ID).To(Equal("svc-0"))
			})

			It("commit nothing when a write inside is refused", func() {
				err := store.Update(func(tx state.Tx) error {
					if err := tx.UpdateService(typestest.Service("svc-1", "web")); err != nil {
						return err
					}
					return tx.UpdateService(typestest.Service("svc-2", "web"))
				})
				Expect(errors.Is(err, state.ErrNameTaken)).To(BeTrue())
				ss, err := store.ListServices()
				Expect(err).NotTo(HaveOccurred())
				Expect(ss).To(BeEmpty())
			})

			It("give View one consistent snapshot while writes go on", func() {
				Expect(store.UpdateNode(typestest.Node("node-1"))).To(Succeed())
				err := store.View(func(r state.Reader) error {
					done := make(chan error)
					go func() { done <- store.UpdateNode(typestest.Node("node-2")) }()
					Eventually(done, "10s").Should(Receive(BeNil()))
					ns, err := r.ListNodes()
					Expect(ns).To(HaveLen(1))
					return err
				})
				Expect(err).NotTo(HaveOccurred())
				ns, err := store.ListNodes()
				Expect(err).NotTo(HaveOccurred())
				Expect(ns).To(HaveLen(2))
			})
		})

		Describe("readers during writes", func() {
			It("always see a whole transaction or none of it", func() {
				const tasks, moves = 4, 300
				Expect(store.Update(func(tx state.Tx) error {
					for i := range tasks {
						if err := tx.UpdateContainer(typestest.Container(fmt.Sprintf("c-%04d", i), "svc-1", "node-1")); err != nil {
							return err
						}
					}
					return nil
				})).To(Succeed())
				// Each move replaces the oldest task with a new one on the
				// other node: every committed state has exactly four tasks,
				// all on one node except the newest.
				done := make(chan struct{})
				go func() {
					defer GinkgoRecover()
					defer close(done)
					for i := range moves {
						Expect(store.Update(func(tx state.Tx) error {
							if err := tx.DeleteContainer(fmt.Sprintf("c-%04d", i)); err != nil {
								return err
							}
							return tx.UpdateContainer(typestest.Container(fmt.Sprintf("c-%04d", i+tasks), "svc-1", fmt.Sprintf("node-%d", (i+1)%2)))
						})).To(Succeed())
					}
				}()
				reads := 0
				for stop := false; !stop; reads++ {
					select {
					case <-done:
						stop = true
					default:
					}
					Expect(store.View(func(r state.Reader) error {
						all, err := r.ListContainersByService("svc-1")
						if err != nil {
							return err
						}
						n0, _ := r.ListContainersByNode("node-0")
						n1, _ := r.ListContainersByNode("node-1")
						Expect(all).To(HaveLen(tasks))
						Expect(len(n0) + len(n1)).To(Equal(tasks))
						return nil
					})).To(Succeed())
				}
				Expect(reads).To(BeNumerically(">", 1))
			})
		})

		Describe("concurrent writers", func() {
			It("all commit, and one refused write fails alone", func() {
				var wg sync.WaitGroup
				errs := make([]error, 32)
				for i := range errs {
					wg.Add(1)
					go func() {
						defer wg.Done()
						name := fmt.Sprintf("svc-%02d", i)
						if i == 7 {
							name = "svc-03" // collides with writer 3
						}
						errs[i] = store.UpdateService(typestest.Service(fmt.Sprintf("id-%02d", i), name))
					}()
				}
				wg.Wait()
				var failed []int
				for i, err := range errs {
					if err != nil {
						Expect(errors.Is(err, state.ErrNameTaken)).To(BeTrue(), "%v", err)
						failed = append(failed, i)
					}
				}
				Expect(failed).To(HaveLen(1))
				Expect(failed[0]).To(BeElementOf(3, 7))
				ss, err := store.ListServices()
				Expect(err).NotTo(HaveOccurred())
				Expect(ss).To(HaveLen(31))
				owner, err := store.GetServiceByName("svc-03")
				Expect(err).NotTo(HaveOccurred())
				Expect(owner.ID).To(Equal(fmt.Sprintf("id-%02d", 10-failed[0])))
			})
		})

		Describe("records of an older schema", func() {
			It("are migrated when read", func() {
				v1 := []byte(`{"ID":"node-old","Role":"worker","Status":"draining","Labels":{},"Resources":null}`)
				Expect(kv.Update(func(tx state.KVTx) error {
					return tx.Put(types.KindNode.Bucket(), []byte("node-old"), v1)
				})).To(Succeed())
				n, err := store.GetNode("node-old")
				Expect(err).NotTo(HaveOccurred())
				Expect(n.SchemaVersion).To(Equal(types.SchemaVersion))
				Expect(n.Availability).To(Equal(types.NodeDrain))
				Expect(store.UpdateNode(n)).To(Succeed())
			})

			It("are read at the current version when they carry none (a cluster)", func() {
				c := typestest.Cluster("cluster-old")
				b, err := json.Marshal(c)
				Expect(err).NotTo(HaveOccurred())
				Expect(kv.Update(func(tx state.KVTx) error {
					return tx.Put(types.KindCluster.Bucket(), []byte("cluster-old"), b)
				})).To(Succeed())
				got, err := store.GetCluster()
				Expect(err).NotTo(HaveOccurred())
				c.SchemaVersion = types.SchemaVersion
				Expect(got).To(Equal(c))
				Expect(store.UpdateCluster(got)).To(Succeed())
			})

			It("of a newer version are refused with a clear error", func() {
				Expect(kv.Update(func(tx state.KVTx) error {
					return tx.Put(types.KindService.Bucket(), []byte("svc-new"), []byte(`{"SchemaVersion":99,"ID":"svc-new"}`))
				})).To(Succeed())
				_, err := store.GetService("svc-new")
				Expect(errors.Is(err, types.ErrNewerSchema)).To(BeTrue())
			})
		})

		Describe("a closed store", func() {
			It("refuses reads and writes", func() {
				Expect(store.Close()).To(Succeed())
				_, err := store.ListNodes()
				Expect(err).To(HaveOccurred())
				Expect(store.UpdateNode(typestest.Node("n"))).NotTo(Succeed())
			})
		})
	})
}

func containerIDs(cs []*types.Container, err error) []string {
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ids := []string{}
	for _, c := range cs {
		ids = append(ids, c.ID)
	}
	return ids
}

// kindOps drives one record kind through the Store without knowing its type.
type kindOps struct {
	kind types.Kind
	// stamp returns a copy of r as the store returns it: at the current
	// schema version.
	stamp func(types.Record) types.Record
	make  func(id, name string) types.Record
	put   func(state.Store, types.Record) error
	get   func(state.Store, string) (types.Record, error)
	list  func(state.Store) ([]types.Record, error)
	del   func(state.Store, string) error
}

func (k kindOps) listIDs(s state.Store) ([]string, error) {
	rs, err := k.list(s)
	ids := []string{}
	for _, r := range rs {
		ids = append(ids, r.RecordID())
	}
	return ids, err
}

type namedOps struct {
	kindOps
	byName func(state.Store, string) (types.Record, error)
}

func ops[T any, P types.RecordPtr[T]](
	kind types.Kind,
	mk func(id, name string) P,
	put func(state.Store, P) error,
	get func(state.Store, string) (P, error),
	list func(state.Store) ([]P, error),
	del func(state.Store, string) error,
) kindOps {
	return kindOps{
		kind: kind,
		stamp: func(r types.Record) types.Record {
			c := *r.(P)
			reflect.ValueOf(&c).Elem().FieldByName("SchemaVersion").SetInt(types.SchemaVersion)
			return P(&c)
		},
		make: func(id, name string) types.Record { return mk(id, name) },
		put:  func(s state.Store, r types.Record) error { return put(s, r.(P)) },
		get:  func(s state.Store, id string) (types.Record, error) { return get(s, id) },
		list: func(s state.Store) ([]types.Record, error) {
			ps, err := list(s)
			rs := make([]types.Record, len(ps))
			for i, p := range ps {
				rs[i] = p
			}
			return rs, err
		},
		del: del,
	}
}

func named[P types.Record](k kindOps, byName func(state.Store, string) (P, error)) namedOps {
	return namedOps{kindOps: k, byName: func(s state.Store, n string) (types.Record, error) { return byName(s, n) }}
}

var (
	nodeOps = ops(types.KindNode,
		func(id, name string) *types.Node { n := typestest.Node(id); n.Hostname = name; return n },
		state.Store.UpdateNode, state.Store.GetNode, state.Store.ListNodes, state.Store.DeleteNode)
	serviceOps = ops(types.KindService, typestest.Service,
		state.Store.UpdateService, state.Store.GetService, state.Store.ListServices, state.Store.DeleteService)
	containerOps = ops(types.KindContainer,
		func(id, name string) *types.Container {
			c := typestest.Container(id, "svc-1", "node-1")
			c.ServiceName = name
			return c
		},
		state.Store.UpdateContainer, state.Store.GetContainer, state.Store.ListContainers, state.Store.DeleteContainer)
	secretOps = ops(types.KindSecret, typestest.Secret,
		state.Store.UpdateSecret, state.Store.GetSecret, state.Store.ListSecrets, state.Store.DeleteSecret)
	volumeOps = ops(types.KindVolume,
		func(id, name string) *types.Volume { return typestest.Volume(id, name, "node-1") },
		state.Store.UpdateVolume, state.Store.GetVolume, state.Store.ListVolumes, state.Store.DeleteVolume)
	networkOps = ops(types.KindNetwork, typestest.Network,
		state.Store.UpdateNetwork, state.Store.GetNetwork, state.Store.ListNetworks, state.Store.DeleteNetwork)
)

func kindEntries() []TableEntry {
	return []TableEntry{
		Entry("nodes", nodeOps),
		Entry("services", serviceOps),
		Entry("containers", containerOps),
		Entry("secrets", secretOps),
		Entry("volumes", volumeOps),
		Entry("networks", networkOps),
	}
}

func namedEntries() []TableEntry {
	return []TableEntry{
		Entry("services", named(serviceOps, state.Store.GetServiceByName)),
		Entry("secrets", named(secretOps, state.Store.GetSecretByName)),
		Entry("volumes", named(volumeOps, state.Store.GetVolumeByName)),
		Entry("networks", named(networkOps, state.Store.GetNetworkByName)),
	}
}
