package raftsim

import (
	"math"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

var _ = Describe("History", func() {
	var h *History

	BeforeEach(func() { h = &History{} })

	create := func(client int, key, value string, st status, call, ret int64) {
		h.add(client, opInput{op: opCreate, key: key, value: value}, opOutput{status: st}, call, ret, 0)
	}
	update := func(client int, key, value string, st status, call, ret int64) {
		h.add(client, opInput{op: opUpdate, key: key, value: value}, opOutput{status: st}, call, ret, 0)
	}
	read := func(client int, key string, exists bool, value string, call, ret int64) {
		h.add(client, opInput{op: opRead, key: key}, opOutput{status: stOK, exists: exists, value: value}, call, ret, 0)
	}
	const never = math.MaxInt64

	When("every read sees the writes that returned before it", func() {
		It("is linearizable", func() {
			create(0, "secret/a", "a", stOK, 1, 2)
			read(1, "secret/a", true, "a", 3, 4)
			create(1, "secret/a", "a", stExists, 5, 6)
			create(0, "service/s", "v0", stOK, 1, 3)
			update(0, "service/s", "v1", stOK, 4, 7)
			update(1, "service/s", "v2", stOK, 5, 6) // concurrent with v1: either order
			read(2, "service/s", true, "v1", 8, 9)
			update(2, "service/t", "v", stNotFound, 1, 2)
			Expect(h.CheckLinearizable(nil)).To(Succeed())
		})
	})

	When("a read misses a create acknowledged before it began", func() {
		It("is not linearizable, and names the object", func() {
			create(0, "secret/a", "a", stOK, 1, 2)
			read(1, "secret/b", false, "", 1, 2)
			read(1, "secret/a", false, "", 3, 4)
			err := h.CheckLinearizable(nil)
			Expect(err).To(MatchError(ErrNotLinearizable))
			Expect(err.Error()).To(ContainSubstring("object secret/a"))
			Expect(err.Error()).NotTo(ContainSubstring("object secret/b"))
		})
	})

	When("a read returns a value overwritten before it began", func() {
		It("is not linearizable", func() {
			create(0, "service/s", "v0", stOK, 1, 2)
			update(0, "service/s", "v1", stOK, 3, 4)
			read(1, "service/s", true, "v0", 5, 6)
			Expect(h.CheckLinearizable(nil)).To(MatchError(ErrNotLinearizable))
		})
	})

	When("a write's outcome is unknown", func() {
		It("may have taken effect, at any time after its call", func() {
			create(0, "secret/a", "a", stUnknown, 1, never)
			read(1, "secret/a", false, "", 2, 3)
			read(1, "secret/a", true, "a", 4, 5)
			Expect(h.CheckLinearizable(nil)).To(Succeed())
		})

		It("may never take effect", func() {
			create(0, "secret/a", "a", stUnknown, 1, never)
			read(1, "secret/a", false, "", 2, 3)
			update(0, "service/s", "lost", stUnknown, 1, never)
			Expect(h.CheckLinearizable(nil)).To(Succeed())
		})

		It("cannot take effect before its call", func() {
			read(1, "secret/a", true, "a", 1, 2)
			create(0, "secret/a", "a", stUnknown, 3, never)
			Expect(h.CheckLinearizable(nil)).To(MatchError(ErrNotLinearizable))
		})
	})

	It("counts operations by outcome", func() {
		create(0, "secret/a", "a", stOK, 1, 2)
		create(0, "secret/b", "b", stUnknown, 3, never)
		read(1, "secret/a", true, "a", 4, 5)
		Expect(h.Stats()).To(Equal(HistoryStats{Ops: 3, Writes: 2, Reads: 1, Unknown: 1}))
	})
})
