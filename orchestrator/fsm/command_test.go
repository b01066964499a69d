package fsm_test

import (
	"errors"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/fsm"
	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

var at = typestest.Epoch.Add(time.Hour)

// everyCommand has one command of every kind, in Kind order.
func everyCommand() []fsm.Command {
	return []fsm.Command{
		&fsm.CreateService{Service: typestest.Service("svc-1", "web")},
		&fsm.UpdateService{Service: typestest.Service("svc-1", "web")},
		&fsm.DeleteService{ID: "svc-1"},
		&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "data", "")},
		&fsm.UpdateVolume{Volume: typestest.Volume("vol-1", "data", "node-1")},
		&fsm.DeleteVolume{ID: "vol-1"},
		&fsm.CreateSecret{Secret: typestest.Secret("sec-1", "pw")},
		&fsm.UpdateSecret{Secret: typestest.Secret("sec-1", "pw")},
		&fsm.DeleteSecret{ID: "sec-1"},
		&fsm.CreateNetwork{Network: typestest.Network("net-1", "front")},
		&fsm.UpdateNetwork{Network: typestest.Network("net-1", "front")},
		&fsm.DeleteNetwork{ID: "net-1"},
		&fsm.RegisterNode{Node: typestest.Node("node-1")},
		&fsm.UpdateNode{Node: typestest.Node("node-1")},
		&fsm.SetNodeStatus{NodeID: "node-1", Status: types.NodeDown, LastHeartbeat: at},
		&fsm.ReportTasks{Statuses: []fsm.TaskStatus{{TaskID: "t-1", NodeID: "node-1", ActualState: types.ContainerRunning, StartedAt: at}}},
		&fsm.PlanTasks{
			Upsert: []*types.Container{typestest.Container("t-1", "svc-1", "node-1")},
			Delete: []string{"t-0"},
			Pin:    []*types.Volume{typestest.Volume("vol-2", "cache", "node-1")},
		},
		&fsm.SetCluster{Cluster: typestest.Cluster("cluster-1")},
		&fsm.DeleteNode{ID: "node-1"},
		&fsm.Batch{Commands: []fsm.Command{
			&fsm.CreateVolume{Volume: typestest.Volume("vol-1", "data", "")},
			&fsm.DeleteSecret{ID: "sec-1", Force: true},
		}},
		&fsm.ReportVolumes{NodeID: "node-1", Volumes: []fsm.VolumeReport{
			{ID: "vol-1", MountPath: "/srv/volumes/data", Size: 42, SizeAt: at}, {ID: "vol-2", Size: 7, SizeAt: at},
		}},
	}
}

var _ = Describe("Encode and Decode", func() {
	It("round-trip every kind of command", func() {
		cmds := everyCommand()
		Expect(cmds).To(HaveLen(int(fsm.KindReportVolumes)))
		for i, c := range cmds {
			Expect(c.Kind()).To(Equal(fsm.Kind(i+1)), "%T", c)
			b, err := fsm.Encode(c)
			Expect(err).NotTo(HaveOccurred())
			Expect(b[0]).To(Equal(fsm.Version))
			Expect(b[1]).To(Equal(byte(c.Kind())))
			back, err := fsm.Decode(b)
			Expect(err).NotTo(HaveOccurred())
			Expect(back).To(Equal(c), "%s", c.Kind())
		}
	})

	DescribeTable("refuse entries they cannot read",
		func(entry []byte, message string) {
			_, err := fsm.Decode(entry)
			Expect(errors.Is(err, fsm.ErrFormat)).To(BeTrue())
			Expect(err).To(MatchError(ContainSubstring(message)))
		},
		Entry("empty", []byte{}, "too short"),
		Entry("a newer format", []byte{fsm.Version + 1, 1, '{', '}'}, "upgrade warren on every manager"),
		Entry("an unknown kind", []byte{fsm.Version, 200, '{', '}'}, "unknown command kind 200"),
		Entry("bad JSON", []byte{fsm.Version, byte(fsm.KindDeleteService), '{'}, "DeleteService"),
	)

	It("keep the values of kinds already in logs", func() {
		Expect(fsm.KindPlanTasks).To(BeEquivalentTo(17))
		Expect(fsm.KindSetCluster).To(BeEquivalentTo(18))
		Expect(fsm.KindDeleteNode).To(BeEquivalentTo(19))
		Expect(fsm.KindBatch).To(BeEquivalentTo(20))
		Expect(fsm.KindReportVolumes).To(BeEquivalentTo(21))
	})

	It("refuse a batch inside a batch", func() {
		_, err := fsm.Encode(&fsm.Batch{Commands: []fsm.Command{&fsm.Batch{}}})
		Expect(err).To(MatchError(ContainSubstring("flatten it")))
		_, err = fsm.Decode(append([]byte{fsm.Version, byte(fsm.KindBatch)}, `{"Commands":[{"Kind":20,"Command":{}}]}`...))
		Expect(errors.Is(err, fsm.ErrFormat)).To(BeTrue())
	})

	It("names kinds", func() {
		Expect(fsm.KindPlanTasks.String()).To(Equal("PlanTasks"))
		Expect(fsm.KindSetCluster.String()).To(Equal("SetCluster"))
		Expect(fsm.KindDeleteNode.String()).To(Equal("DeleteNode"))
		Expect(fsm.Kind(200).String()).To(Equal("Kind(200)"))
	})
})
