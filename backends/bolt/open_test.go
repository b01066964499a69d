package bolt_test

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	bbolt "go.etcd.io/bbolt"

	"github.com/warren-orchestrator/warren/backends/bolt"
	"github.com/warren-orchestrator/warren/orchestrator/state"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// fingerprint is what "changes nothing" is checked against.
type fingerprint struct {
	sum  [32]byte
	mode os.FileMode
}

func fingerprintOf(path string) fingerprint {
	b, err := os.ReadFile(path)
	Expect(err).NotTo(HaveOccurred())
	info, err := os.Stat(path)
	Expect(err).NotTo(HaveOccurred())
	return fingerprint{sha256.Sum256(b), info.Mode()}
}

// writeBolt makes a BoltDB file that is not Warren's, or is a Warren file
// with meta entries of the caller's choosing.
func writeBolt(path string, buckets map[string]map[string]string) {
	db, err := bbolt.Open(path, 0o644, nil)
	Expect(err).NotTo(HaveOccurred())
	Expect(db.Update(func(tx *bbolt.Tx) error {
		for name, kvs := range buckets {
			b, err := tx.CreateBucket([]byte(name))
			if err != nil {
				return err
			}
			for k, v := range kvs {
				if err := b.Put([]byte(k), []byte(v)); err != nil {
					return err
				}
			}
		}
		return nil
	})).To(Succeed())
	Expect(db.Close()).To(Succeed())
}

var _ = Describe("Open", func() {
	var dir string
	BeforeEach(func() { dir = filepath.Join(GinkgoT().TempDir(), "data") })

	When("the data directory is new", func() {
		It("creates it 0700 with warren.db 0600", func() {
			s, err := bolt.Open(dir)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			expectPerm(dir, 0o700)
			expectPerm(filepath.Join(dir, "warren.db"), 0o600)
		})
	})

	When("the data directory is open to others", func() {
		It("closes it to owner only", func() {
			Expect(os.MkdirAll(dir, 0o755)).To(Succeed())
			s, err := bolt.Open(dir)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			expectPerm(dir, 0o700)
		})
	})

	When("the store is closed and opened again", func() {
		It("has every record, index included", func() {
			s, err := bolt.Open(dir)
			Expect(err).NotTo(HaveOccurred())
			Expect(s.UpdateService(typestest.Service("svc-1", "web"))).To(Succeed())
			Expect(s.UpdateContainer(typestest.Container("c-1", "svc-1", "node-1"))).To(Succeed())
			Expect(s.Close()).To(Succeed())

			s, err = bolt.Open(dir)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			got, err := s.GetServiceByName("web")
			Expect(err).NotTo(HaveOccurred())
			Expect(got.ID).To(Equal("svc-1"))
			cs, err := s.ListContainersByNode("node-1")
			Expect(err).NotTo(HaveOccurred())
			Expect(cs).To(HaveLen(1))
		})
	})

	When("warren.db exists but is empty", func() {
		It("initializes it", func() {
			Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
			Expect(os.WriteFile(bolt.Path(dir), nil, 0o600)).To(Succeed())
			s, err := bolt.Open(dir)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			Expect(s.UpdateNode(typestest.Node("n1"))).To(Succeed())
		})
	})

	When("warren.db is not a Warren database", func() {
		DescribeTable("fails naming the problem and the fix, and changes nothing",
			func(prepare func(path string), target error, message string) {
				Expect(os.MkdirAll(dir, 0o700)).To(Succeed())
				path := bolt.Path(dir)
				prepare(path)
				before := fingerprintOf(path)

				_, err := bolt.Open(dir)
				Expect(errors.Is(err, target)).To(BeTrue(), "%v", err)
				Expect(err).To(MatchError(ContainSubstring(message)))
				Expect(err).To(MatchError(ContainSubstring(path)))
				Expect(fingerprintOf(path)).To(Equal(before))
			},
			Entry("a text file", func(p string) {
				Expect(os.WriteFile(p, []byte(strings.Repeat("hello, not a database\n", 1000)), 0o644)).To(Succeed())
			}, bolt.ErrNotWarren, "is not a BoltDB file"),
			Entry("a BoltDB file of another program", func(p string) {
				writeBolt(p, map[string]map[string]string{"users": {"alice": "1"}})
			}, bolt.ErrNotWarren, `without Warren's "meta" bucket`),
			Entry("a BoltDB file of another format", func(p string) {
				writeBolt(p, map[string]map[string]string{"meta": {"format": "other", "schema": "1"}})
			}, bolt.ErrNotWarren, `has format "other"`),
			Entry("a Warren database of a newer schema", func(p string) {
				writeBolt(p, map[string]map[string]string{"meta": {"format": "warren", "schema": "99"}})
			}, types.ErrNewerSchema, "upgrade warren"),
		)

		It("refuses a directory in its place", func() {
			Expect(os.MkdirAll(bolt.Path(dir), 0o700)).To(Succeed())
			_, err := bolt.Open(dir)
			Expect(errors.Is(err, bolt.ErrNotWarren)).To(BeTrue())
			Expect(err).To(MatchError(ContainSubstring("not a regular file")))
		})
	})

	When("another process has the database open", func() {
		It("fails quickly, saying so", func() {
			s, err := bolt.Open(dir)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Close)
			_, err = bolt.Open(dir)
			Expect(errors.Is(err, bolt.ErrLocked)).To(BeTrue())
			Expect(err).To(MatchError(ContainSubstring("another warren running")))
		})
	})

	When("the data directory cannot be created", func() {
		It("says why", func() {
			file := filepath.Join(GinkgoT().TempDir(), "file")
			Expect(os.WriteFile(file, nil, 0o600)).To(Succeed())
			_, err := bolt.Open(filepath.Join(file, "data"))
			Expect(err).To(MatchError(ContainSubstring("create data directory")))
		})
	})
})

var _ = Describe("warren.db read by the bbolt command-line tool", func() {
	var path string
	BeforeEach(func() {
		dir := GinkgoT().TempDir()
		s, err := bolt.Open(dir)
		Expect(err).NotTo(HaveOccurred())
		n := typestest.Node("node-abc123")
		Expect(s.UpdateNode(n)).To(Succeed())
		Expect(s.UpdateService(typestest.Service("svc-xyz789", "nginx-web"))).To(Succeed())
		Expect(s.Close()).To(Succeed())
		path = bolt.Path(dir)
	})

	bboltCLI := func(args ...string) string {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		out, err := exec.Command(goBin, append([]string{"tool", "bbolt"}, args...)...).CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		return string(out)
	}

	It("lists the schema's buckets and the indexes", func() {
		buckets := strings.Fields(bboltCLI("buckets", path))
		Expect(buckets).To(ContainElements("nodes", "services", "containers", "secrets", "volumes", "networks"))
		Expect(buckets).To(ContainElements(state.Buckets()))
		Expect(buckets).To(ContainElement("meta"))
	})

	It("gets a node by ID as the record's JSON", func() {
		out := bboltCLI("get", path, "nodes", "node-abc123")
		var n types.Node
		Expect(json.Unmarshal([]byte(out), &n)).To(Succeed())
		want := typestest.Node("node-abc123")
		want.SchemaVersion = types.SchemaVersion
		Expect(&n).To(Equal(want))
	})
})

// expectPerm asserts path's permission bits.
func expectPerm(path string, perm os.FileMode) {
	GinkgoHelper()
	info, err := os.Stat(path)
	Expect(err).NotTo(HaveOccurred())
	Expect(info.Mode().Perm()).To(Equal(perm))
}
