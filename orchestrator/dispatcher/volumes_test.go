package dispatcher_test

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/agent"
	"github.com/warren-orchestrator/warren/orchestrator/dispatcher"
	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var _ = Describe("Volume reports", func() {
	var vols []*types.Volume
	now := typestest.Epoch.Add(time.Hour)

	BeforeEach(func() {
		measured := typestest.Volume("vol-2", "logs", "node-1")
		measured.Size, measured.SizeAt = 500, typestest.Epoch
		vols = []*types.Volume{
			typestest.Volume("vol-1", "db-data", "node-1"),
			measured,
			typestest.Volume("vol-3", "elsewhere", "node-2"),
			typestest.Volume("vol-4", "unplaced", ""),
		}
	})

	DescribeTable("write only the sizes of the node's volumes that changed",
		func(sizes map[string]int64, want map[string]int64) {
			got := dispatcher.VolumeReport("node-1", vols, "", sizes, now)
			written := map[string]int64{}
			if got != nil {
				Expect(got.NodeID).To(Equal("node-1"))
				for _, r := range got.Volumes {
					Expect(r.SizeAt).To(Equal(now))
					Expect(r.MountPath).To(BeEmpty())
					written[r.ID] = r.Size
				}
			}
			Expect(written).To(Equal(want))
			if len(want) == 0 {
				Expect(got).To(BeNil(), "no command at all")
			}
		},
		Entry("a first measurement, even of an empty volume", map[string]int64{"vol-1": 0}, map[string]int64{"vol-1": 0}),
		Entry("a size that changed", map[string]int64{"vol-2": 700}, map[string]int64{"vol-2": 700}),
		Entry("the same size again: nothing, so an idle cluster writes nothing", map[string]int64{"vol-2": 500}, map[string]int64{}),
		Entry("another node's volume, or one not placed", map[string]int64{"vol-3": 1, "vol-4": 1}, map[string]int64{}),
		Entry("a volume that does not exist", map[string]int64{"vol-9": 1}, map[string]int64{}),
		Entry("a negative size", map[string]int64{"vol-1": -1}, map[string]int64{}),
	)

	It("records the node's own directory as the mount point, once", func() {
		got := dispatcher.VolumeReport("node-1", vols, "/srv/warren/volumes", nil, now)
		Expect(got.Volumes).To(Equal([]fsm.VolumeReport{
			{ID: "vol-1", MountPath: "/srv/warren/volumes/db-data"},
			{ID: "vol-2", MountPath: "/srv/warren/volumes/logs"},
		}))
		vols[0].MountPath, vols[1].MountPath = "/srv/warren/volumes/db-data", "/srv/warren/volumes/logs"
		Expect(dispatcher.VolumeReport("node-1", vols, "/srv/warren/volumes", nil, now)).To(BeNil())
		Expect(dispatcher.VolumeReport("node-1", vols, "relative/dir", nil, now)).To(BeNil(), "a root that is not absolute is ignored")
	})

	It("does not change the records it is given", func() {
		got := dispatcher.VolumeReport("node-1", vols, "/srv", map[string]int64{"vol-1": 42}, now)
		Expect(got.Volumes).To(HaveLen(2))
		Expect(vols[0].Size).To(BeZero())
		Expect(vols[0].SizeAt.IsZero()).To(BeTrue())
		Expect(vols[0].MountPath).NotTo(HavePrefix("/srv/"))
	})

	It("lists the volumes pinned to the node, and which of those it holds are gone", func() {
		pinned, gone := dispatcher.NodeVolumes("node-1", vols, []string{"vol-2", "vol-3", "vol-9", "vol-9"})
		Expect(pinned).To(Equal([]agent.Volume{{ID: "vol-1", Name: "db-data"}, {ID: "vol-2", Name: "logs"}}))
		Expect(gone).To(Equal([]string{"vol-3", "vol-9"}))
	})
})
