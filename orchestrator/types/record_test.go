package types_test

import (
	"encoding/json"
	"errors"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Decode", func() {
	When("a version 1 node is read", func() {
		DescribeTable("its availability comes from its old status",
			func(status types.NodeStatus, want types.NodeAvailability) {
				doc := []byte(`{"ID":"n1","Role":"worker","Status":"` + string(status) + `"}`)
				n, err := types.Decode[types.Node](doc)
				Expect(err).NotTo(HaveOccurred())
				Expect(n.SchemaVersion).To(Equal(types.SchemaVersion))
				Expect(n.Availability).To(Equal(want))
				Expect(n.Status).To(Equal(status))
			},
			Entry("ready", types.NodeReady, types.NodeActive),
			Entry("down", types.NodeDown, types.NodeActive),
			Entry("draining", types.NodeDraining, types.NodeDrain),
		)
	})

	When("a version 2 node is read", func() {
		It("keeps its availability", func() {
			n, err := types.Decode[types.Node]([]byte(`{"SchemaVersion":2,"ID":"n1","Role":"worker","Status":"draining","Availability":"pause"}`))
			Expect(err).NotTo(HaveOccurred())
			Expect(n.Availability).To(Equal(types.NodePause))
		})
	})

	When("a record has a newer schema version", func() {
		It("fails with ErrNewerSchema and says to upgrade", func() {
			_, err := types.Decode[types.Service]([]byte(`{"SchemaVersion":99,"ID":"s1"}`))
			Expect(errors.Is(err, types.ErrNewerSchema)).To(BeTrue())
			Expect(err.Error()).To(ContainSubstring("upgrade warren"))
		})
	})

	When("a cluster record without a schema version is read", func() {
		It("is taken as it is, at the current version", func() {
			c := typestest.Cluster("cluster-1")
			b, err := json.Marshal(c)
			Expect(err).NotTo(HaveOccurred())
			back, err := types.Decode[types.Cluster](b)
			Expect(err).NotTo(HaveOccurred())
			c.SchemaVersion = types.SchemaVersion
			Expect(back).To(Equal(c))
		})
	})

	When("the bytes are not JSON", func() {
		It("fails naming the kind", func() {
			_, err := types.Decode[types.Volume]([]byte(`{"ID":`))
			Expect(err).To(MatchError(ContainSubstring("decode volume")))
		})
	})
})

var _ = Describe("Encode", func() {
	It("stamps the current schema version without changing its argument", func() {
		n := validNode()
		b, err := types.Encode(n)
		Expect(err).NotTo(HaveOccurred())
		Expect(n.SchemaVersion).To(Equal(0))
		var m map[string]any
		Expect(json.Unmarshal(b, &m)).To(Succeed())
		Expect(m["SchemaVersion"]).To(BeNumerically("==", types.SchemaVersion))
		back, err := types.Decode[types.Node](b)
		Expect(err).NotTo(HaveOccurred())
		n.SchemaVersion = types.SchemaVersion
		Expect(back).To(Equal(n))
	})

	It("refuses an invalid record", func() {
		n := validNode()
		n.Role = "boss"
		_, err := types.Encode(n)
		Expect(errors.Is(err, types.ErrInvalid)).To(BeTrue())
	})
})

var _ = Describe("Kind", func() {
	It("names the schema's six buckets, then the cluster's", func() {
		var buckets []string
		for _, k := range types.Kinds {
			buckets = append(buckets, k.Bucket())
		}
		Expect(buckets).To(Equal([]string{"nodes", "services", "containers", "secrets", "volumes", "networks", "clusters"}))
	})
})

var _ = Describe("IP", func() {
	DescribeTable("round-trips through JSON",
		func(doc string, valid bool) {
			var ip types.IP
			Expect(json.Unmarshal([]byte(doc), &ip)).To(Succeed())
			Expect(ip.IsValid()).To(Equal(valid))
			out, err := json.Marshal(ip)
			Expect(err).NotTo(HaveOccurred())
			if valid {
				Expect(string(out)).To(Equal(doc))
			} else {
				Expect(string(out)).To(Equal("null"))
			}
		},
		Entry("null", `null`, false),
		Entry("empty", `""`, false),
		Entry("v4", `"10.42.0.7"`, true),
		Entry("v6", `"fd00::7"`, true),
	)

	It("rejects a bad address", func() {
		var ip types.IP
		Expect(json.Unmarshal([]byte(`"10.0.0.300"`), &ip)).NotTo(Succeed())
	})
})
