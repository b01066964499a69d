package types_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/types"
)

func readGolden(name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	Expect(err).NotTo(HaveOccurred())
	var compact bytes.Buffer
	Expect(json.Compact(&compact, b)).To(Succeed())
	return compact.Bytes()
}

func roundTrip[T any](doc []byte) []byte {
	var v T
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.DisallowUnknownFields()
	Expect(dec.Decode(&v)).To(Succeed())
	out, err := json.Marshal(&v)
	Expect(err).NotTo(HaveOccurred())
	return out
}

var _ = Describe("Stored record examples", func() {
	DescribeTable("decode and re-encode to the same bytes",
		func(file string, rt func([]byte) []byte) {
			doc := readGolden(file)
			Expect(string(rt(doc))).To(Equal(string(doc)))
		},
		Entry("node", "node-v1.json", roundTrip[types.Node]),
		Entry("service", "service-v1.json", roundTrip[types.Service]),
		Entry("container", "container-v1.json", roundTrip[types.Container]),
		Entry("secret", "secret-v1.json", roundTrip[types.Secret]),
		Entry("volume", "volume-v1.json", roundTrip[types.Volume]),
		Entry("network", "network-v1.json", roundTrip[types.Network]),
		Entry("cluster", "cluster-v2.json", roundTrip[types.Cluster]),
	)

	DescribeTable("migrate to the current version and validate",
		func(file string, decode func([]byte) (types.Record, error)) {
			r, err := decode(readGolden(file))
			Expect(err).NotTo(HaveOccurred())
			Expect(r.Validate()).To(Succeed())
		},
		Entry("node", "node-v1.json", decodeAs[types.Node]),
		Entry("service", "service-v1.json", decodeAs[types.Service]),
		Entry("container", "container-v1.json", decodeAs[types.Container]),
		Entry("secret", "secret-v1.json", decodeAs[types.Secret]),
		Entry("volume", "volume-v1.json", decodeAs[types.Volume]),
		Entry("network", "network-v1.json", decodeAs[types.Network]),
		Entry("cluster", "cluster-v2.json", decodeAs[types.Cluster]),
	)
})

func decodeAs[T any, P types.RecordPtr[T]](b []byte) (types.Record, error) {
	return types.Decode[T, P](b)
}
