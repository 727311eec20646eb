package sim

import (
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func versionHost(version string) *simulator.HostSystem {
	h := &simulator.HostSystem{}
	h.Config = &types.HostConfigInfo{Product: types.AboutInfo{Version: version}}
	return h
}

func TestPciPassthroughLimit(t *testing.T) {
	for version, want := range map[string]int32{
		"4.0.0": 2, "5.5.0": 6, "6.0.0": 16, "6.7.3": 16, "7.0.3": 16,
		"8.0.0": 32, "8.0.1": 64, "8.0.2": 128, "8.0.3": 128, "9.0.0": 128, "": 128,
	} {
		if got := pciPassthroughLimit(hostVersion(versionHost(version))); got != want {
			t.Errorf("%q: want %d, got %d", version, want, got)
		}
	}
}

// pciLimit reads numPCIPassthroughDevices from a config option.
func pciLimit(t *testing.T, opt *types.VirtualMachineConfigOption) int32 {
	t.Helper()
	for _, o := range opt.HardwareOptions.VirtualDeviceOption {
		if pci, ok := o.(*types.VirtualPCIControllerOption); ok {
			return pci.NumPCIPassthroughDevices.Max
		}
	}
	t.Fatal("no VirtualPCIControllerOption in hardwareOptions.virtualDeviceOption")
	return 0
}

func TestQueryConfigOptionPassthroughLimit(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		var cr mo.ClusterComputeResource
		ref := e.m.Map().Any("ClusterComputeResource").Reference()
		if err := object.NewClusterComputeResource(e.c, ref).Properties(e.ctx, ref, []string{"environmentBrowser", "host"}, &cr); err != nil {
			t.Fatal(err)
		}
		browser := object.NewEnvironmentBrowser(e.c, *cr.EnvironmentBrowser)
		for _, h := range cr.Host {
			e.m.Map().Get(h).(*simulator.HostSystem).Config.Product.Version = "8.0.1"
		}
		e.host.Config.Product.Version = "7.0.3"

		opt, err := browser.QueryConfigOption(e.ctx, &types.EnvironmentBrowserConfigOptionQuerySpec{Host: &e.host.Self})
		if err != nil {
			t.Fatal(err)
		}
		if got := pciLimit(t, opt); got != 16 {
			t.Errorf("7.0.3 host: want 16, got %d", got)
		}
		other := cr.Host[1]
		opt, err = browser.QueryConfigOption(e.ctx, &types.EnvironmentBrowserConfigOptionQuerySpec{Host: &other})
		if err != nil {
			t.Fatal(err)
		}
		if got := pciLimit(t, opt); got != 64 {
			t.Errorf("8.0.1 host: want 64, got %d", got)
		}
		// Without a host: the lowest limit in the cluster.
		opt, err = browser.QueryConfigOption(e.ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := pciLimit(t, opt); got != 16 {
			t.Errorf("cluster: want 16, got %d", got)
		}

		// The plain QueryConfigOption method too.
		req := types.QueryConfigOption{This: browser.Reference(), Host: &other}
		res, err := methodsQueryConfigOption(e, &req)
		if err != nil {
			t.Fatal(err)
		}
		if got := pciLimit(t, res); got != 64 {
			t.Errorf("QueryConfigOption: want 64, got %d", got)
		}
	})
}

func methodsQueryConfigOption(e *vmEnv, req *types.QueryConfigOption) (*types.VirtualMachineConfigOption, error) {
	res, err := methods.QueryConfigOption(e.ctx, e.c, req)
	if err != nil {
		return nil, err
	}
	return res.Returnval, nil
}

// A strict SOAP client (pyVmomi) refuses an empty SharesLevel; vCenter answers with the hardware
// version asked for.
func TestQueryConfigOptionWellFormed(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		var cr mo.ClusterComputeResource
		ref := e.m.Map().Any("ClusterComputeResource").Reference()
		if err := object.NewClusterComputeResource(e.c, ref).Properties(e.ctx, ref, []string{"environmentBrowser"}, &cr); err != nil {
			t.Fatal(err)
		}
		browser := object.NewEnvironmentBrowser(e.c, *cr.EnvironmentBrowser)
		for _, key := range []string{"vmx-19", "vmx-14"} {
			opt, err := methodsQueryConfigOption(e, &types.QueryConfigOption{This: browser.Reference(), Key: key, Host: &e.host.Self})
			if err != nil {
				t.Fatal(err)
			}
			if opt.Version != key {
				t.Errorf("version: want %s, got %s", key, opt.Version)
			}
			rc := opt.HardwareOptions.ResourceConfigOption
			for what, level := range map[string]types.SharesLevel{
				"cpu":    rc.CpuAllocationOption.SharesOption.DefaultLevel,
				"memory": rc.MemoryAllocationOption.SharesOption.DefaultLevel,
			} {
				if level != types.SharesLevelNormal {
					t.Errorf("%s shares defaultLevel: want normal, got %q", what, level)
				}
			}
		}
	})
}
