package bolt_test

import (
	"bytes"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	bbolt "go.etcd.io/bbolt"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Snapshot", func() {
	var (
		kv    *bolt.KV
		store state.Store
	)
	BeforeEach(func() {
		var err error
		kv, err = bolt.OpenKV(GinkgoT().TempDir(), nil)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() { _ = kv.Close() })
		store = state.New(kv)
		Expect(store.UpdateService(typestest.Service("s1", "web"))).To(Succeed())
		Expect(kv.Update(func(tx state.KVTx) error {
			return tx.Put(bolt.MetaBucket, []byte("owner-key"), []byte("v1"))
		})).To(Succeed())
	})

	It("is a warren.db file as of when it was taken, that bbolt can open", func() {
		snap, err := kv.Snapshot()
		Expect(err).NotTo(HaveOccurred())
		Expect(store.UpdateService(typestest.Service("s2", "api"))).To(Succeed())
		var buf bytes.Buffer
		n, err := snap.WriteTo(&buf)
		Expect(err).NotTo(HaveOccurred())
		Expect(n).To(Equal(snap.Size()))
		Expect(snap.Close()).To(Succeed())

		path := filepath.Join(GinkgoT().TempDir(), "copy.db")
		Expect(os.WriteFile(path, buf.Bytes(), 0o600)).To(Succeed())
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
		Expect(err).NotTo(HaveOccurred())
		defer db.Close()
		Expect(db.View(func(tx *bbolt.Tx) error {
			Expect(tx.Bucket([]byte("services")).Get([]byte("s1"))).NotTo(BeNil())
			Expect(tx.Bucket([]byte("services")).Get([]byte("s2"))).To(BeNil())
			return nil
		})).To(Succeed())
	})

	It("restores another store's snapshot over this one's content, owner meta keys included", func() {
		other, err := bolt.OpenKV(GinkgoT().TempDir(), nil)
		Expect(err).NotTo(HaveOccurred())
		defer other.Close()
		Expect(state.New(other).UpdateSecret(typestest.Secret("k1", "db-pass"))).To(Succeed())
		Expect(other.Update(func(tx state.KVTx) error {
			return tx.Put(bolt.MetaBucket, []byte("owner-key"), []byte("v2"))
		})).To(Succeed())
		snap, err := other.Snapshot()
		Expect(err).NotTo(HaveOccurred())
		var buf bytes.Buffer
		_, err = snap.WriteTo(&buf)
		Expect(err).NotTo(HaveOccurred())
		Expect(snap.Close()).To(Succeed())

		Expect(kv.Restore(&buf)).To(Succeed())
		_, err = store.GetService("s1")
		Expect(err).To(MatchError(state.ErrNotFound))
		s, err := store.GetSecretByName("db-pass")
		Expect(err).NotTo(HaveOccurred())
		Expect(s.ID).To(Equal("k1"))
		Expect(kv.View(func(tx state.KVTx) error {
			Expect(string(tx.Get(bolt.MetaBucket, []byte("owner-key")))).To(Equal("v2"))
			return nil
		})).To(Succeed())
		// Writes go on after a restore.
		Expect(store.UpdateService(typestest.Service("s3", "api"))).To(Succeed())
	})

	It("refuses a stream that is not a Warren database and changes nothing", func() {
		Expect(kv.Restore(bytes.NewReader([]byte("garbage")))).To(MatchError(bolt.ErrNotWarren))
		_, err := store.GetService("s1")
		Expect(err).NotTo(HaveOccurred())
	})
})
