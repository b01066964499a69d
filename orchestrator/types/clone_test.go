package types_test

import (
	"reflect"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/warren-orchestrator/warren/orchestrator/types"
	"github.com/warren-orchestrator/warren/orchestrator/types/typestest"
)

// shared reports the first pointer, slice or map that a and b share.
func shared(a, b reflect.Value, path string) string {
	switch a.Kind() {
	case reflect.Pointer, reflect.Map:
		if !a.IsNil() && a.UnsafePointer() == b.UnsafePointer() {
			return path
		}
	case reflect.Slice:
		// Empty slices may all point at the same zero-size allocation.
		if a.Len() > 0 && a.UnsafePointer() == b.UnsafePointer() {
			return path
		}
	}
	switch a.Kind() {
	case reflect.Pointer:
		if !a.IsNil() {
			return shared(a.Elem(), b.Elem(), path)
		}
	case reflect.Slice:
		for i := range a.Len() {
			if p := shared(a.Index(i), b.Index(i), path); p != "" {
				return p
			}
		}
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				if p := shared(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name); p != "" {
					return p
				}
			}
		}
	}
	return ""
}

func fullService() *types.Service {
	s := typestest.Service("svc-1", "web")
	s.Networks, s.Secrets, s.Constraints = []string{"net-1"}, []string{"sec-1"}, []string{"node.labels.zone==a"}
	s.Volumes = []*types.VolumeMount{{Source: "data", Target: "/data"}}
	s.HealthCheck = &types.HealthCheck{Type: types.HealthCheckExec, Command: []string{"true"}, Interval: time.Second}
	s.Resources = &types.ResourceRequirements{CPULimit: 1}
	return s
}

func fullContainer() *types.Container {
	c := typestest.Container("c-1", "svc-1", "node-1")
	s := fullService()
	c.Ports, c.Mounts, c.HealthCheck, c.Resources = s.Ports, s.Volumes, s.HealthCheck, s.Resources
	return c
}

var _ = Describe("Clone", func() {
	DescribeTable("copies a record deeply",
		func(r any) {
			c := reflect.ValueOf(types.Clone(r))
			Expect(c.Interface()).To(Equal(r))
			Expect(shared(reflect.ValueOf(r), c, "")).To(BeEmpty())
		},
		Entry("node", func() any {
			n := typestest.Node("node-1")
			n.OverlayIP, _ = types.ParseIP("10.42.0.7")
			return n
		}()),
		Entry("service", fullService()),
		Entry("container", fullContainer()),
		Entry("secret", typestest.Secret("sec-1", "pw")),
		Entry("volume", typestest.Volume("vol-1", "data", "node-1")),
		Entry("network", typestest.Network("net-1", "front")),
		Entry("cluster", typestest.Cluster("cluster-1")),
		Entry("nil fields", &types.Service{ID: "s"}),
	)

	It("leaves the original alone when the copy changes", func() {
		s := fullService()
		c := types.Clone(s)
		c.Env[0], c.Labels["app"], c.Ports[0].HostPort, c.HealthCheck.Command[0] = "X=1", "other", 1, "false"
		Expect(s).To(Equal(fullService()))
	})
})
