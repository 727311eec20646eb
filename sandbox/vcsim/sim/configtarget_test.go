package sim

import (
	"sort"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func (e *vmEnv) configTarget(host *types.ManagedObjectReference) *types.ConfigTarget {
	e.t.Helper()
	var cr mo.ClusterComputeResource
	ref := e.m.Map().Any("ClusterComputeResource").Reference()
	if err := object.NewClusterComputeResource(e.c, ref).Properties(e.ctx, ref, []string{"environmentBrowser"}, &cr); err != nil {
		e.t.Fatal(err)
	}
	var h *object.HostSystem
	if host != nil {
		h = object.NewHostSystem(e.c, *host)
	}
	target, err := object.NewEnvironmentBrowser(e.c, *cr.EnvironmentBrowser).QueryConfigTarget(e.ctx, h)
	if err != nil {
		e.t.Fatal(err)
	}
	return target
}

func TestQueryConfigTargetPciPassthrough(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		target := e.configTarget(&e.host.Self)
		var ids []string
		for _, p := range target.PciPassthrough {
			info := p.(*types.VirtualMachinePciPassthroughInfo)
			ids = append(ids, info.PciDevice.Id)
			if info.SystemId != hostSystemID(e.host) {
				t.Errorf("%s: systemId %q", info.PciDevice.Id, info.SystemId)
			}
		}
		sort.Strings(ids)
		want := []string{"0000:3b:00.0", "0000:3c:00.0", "0000:5e:00.0"} // 0000:af:00.0 is not active
		if len(ids) != len(want) || ids[0] != want[0] || ids[1] != want[1] || ids[2] != want[2] {
			t.Fatalf("pciPassthrough: want %v, got %v", want, ids)
		}
		// The Intel device id round-trips negative; the operator masks it.
		for _, p := range target.PciPassthrough {
			info := p.(*types.VirtualMachinePciPassthroughInfo)
			if info.PciDevice.Id == "0000:5e:00.0" && uint16(info.PciDevice.VendorId) != 0x8086 {
				t.Errorf("vendorId %d", info.PciDevice.VendorId)
			}
		}

		// 8.0.2 supports Dynamic DirectPath: one entry per vendor/device/label.
		if n := len(target.DynamicPassthrough); n != 2 {
			t.Fatalf("dynamicPassthrough: want 2 entries, got %+v", target.DynamicPassthrough)
		}
		for _, d := range target.DynamicPassthrough {
			if d.VendorId == 0x10de && (d.DeviceId != 0x20b5 || d.CustomLabel != "a100") {
				t.Errorf("nvidia entry: %+v", d)
			}
			if d.VendorId == 0x8086 && d.DeviceId != 0x158b {
				t.Errorf("intel entry: %+v", d)
			}
		}

		// Before 7.0 there is no Dynamic DirectPath.
		e.host.Config.Product.Version = "6.7.0"
		if target := e.configTarget(&e.host.Self); len(target.DynamicPassthrough) != 0 || len(target.PciPassthrough) != 3 {
			t.Errorf("6.7: dynamic %d, static %d", len(target.DynamicPassthrough), len(target.PciPassthrough))
		}
	})
}

func TestQueryConfigTargetWithoutHostCoversCluster(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		// Give a second cluster host one active device.
		cluster := e.m.Map().Any("ClusterComputeResource").(*simVMCluster)
		other := e.m.Map().Get(cluster.Host[1]).(*simHost)
		other.Hardware.PciDevice = []types.HostPciDevice{{Id: "0000:17:00.0", VendorId: wire16(0x10de), DeviceId: wire16(0x1eb8)}}
		other.Config.PciPassthruInfo = []types.BaseHostPciPassthruInfo{
			&types.HostPciPassthruInfo{Id: "0000:17:00.0", PassthruCapable: true, PassthruEnabled: true, PassthruActive: true},
		}
		target := e.configTarget(nil)
		systems := map[string]int{}
		for _, p := range target.PciPassthrough {
			systems[p.(*types.VirtualMachinePciPassthroughInfo).SystemId]++
		}
		if systems[hostSystemID(e.host)] != 3 || systems[hostSystemID(other)] != 1 {
			t.Fatalf("per host: %v", systems)
		}
	})
}
