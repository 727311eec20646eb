package sim

import (
	"context"
	"testing"
	"time"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func TestDefaultInventoryLoads(t *testing.T) {
	start := time.Now()
	s := newTestSim(t)
	t.Logf("loaded in %s", time.Since(start))
	h := s.Host("esx-gpu-01.lab.local")
	if h == nil {
		t.Fatal("host missing")
	}
	if h.Config.Product.Version != "8.0.2" || h.Config.Product.ApiVersion != "8.0.2.0" {
		t.Errorf("product = %+v", h.Config.Product)
	}
	if s.Host("esx-legacy-01.lab.local").Config.Product.ApiVersion != "6.7" {
		t.Errorf("6.7 api version")
	}
	var intel bool
	for _, d := range h.Hardware.PciDevice {
		if d.Id == "0000:18:00.0" {
			intel = d.VendorId == int16(-32634) // 0x8086 as int16 (govmomi #2248)
		}
	}
	if !intel {
		t.Error("Intel vendor id not stored as negative int16")
	}
	if h.Summary.RebootRequired {
		t.Error("esx-gpu-01 has no pending change")
	}
	if !s.Host("esx-gpu-02.lab.local").Summary.RebootRequired {
		t.Error("enabled-not-active device should require a reboot")
	}
}

// pyvmomi negotiates its wire version from the advertised API version; below 7.0 it would drop
// applyNow and hardwareLabel from UpdatePassthruConfig.
func TestAdvertisesCurrentAPIVersion(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	if v := c.ServiceContent.About.ApiVersion; v != vCenterAPIVersion {
		t.Errorf("apiVersion = %s, want %s", v, vCenterAPIVersion)
	}
}

// The default inventory's teams: ml-team and net-team own a folder and a pool each, the
// feature-conflict VMs share a nested folder, the rest stay at the roots.
func TestDefaultInventoryTenancy(t *testing.T) {
	s := newTestSim(t)
	f := find.NewFinder(connect(t, s).Client)
	ctx := context.Background()
	const gpu = "/DC1/host/GPU-Cluster/Resources"
	want := map[string][2]string{ // VM → folder, pool
		"ml-trainer-01":    {"/DC1/vm/ml-team", gpu + "/ml-team"},
		"ml-inference-01":  {"/DC1/vm/ml-team", gpu + "/ml-team"},
		"batch-01":         {"/DC1/vm/ml-team", gpu + "/ml-team"},
		"e1000-vm-01":      {"/DC1/vm/ml-team", gpu + "/ml-team"},
		"bios-gpu-01":      {"/DC1/vm/ml-team", gpu + "/ml-team"},
		"vmfex-gen2-01":    {"/DC1/vm/net-team", gpu + "/net-team"},
		"vmfex-std-01":     {"/DC1/vm/net-team", gpu + "/net-team"},
		"snap-vm-01":       {"/DC1/vm/lab/conflicts", gpu},
		"hotadd-vm-01":     {"/DC1/vm/lab/conflicts", gpu},
		"nested-vm-01":     {"/DC1/vm/lab/conflicts", gpu},
		"ft-vm-01":         {"/DC1/vm/lab/conflicts", gpu},
		"web-01":           {"/DC1/vm", gpu},
		"legacy-vm-01":     {"/DC1/vm", "/DC1/host/Compute-Cluster/Resources"},
		"standalone-vm-01": {"/DC1/vm", "/DC1/host/esx-standalone-01.lab.local/Resources"},
	}
	if n := len(s.Map.All("VirtualMachine")); n != len(want) {
		t.Errorf("%d VMs, the test knows %d", n, len(want))
	}
	for name, w := range want {
		vm := s.vmByName(name)
		folder, err := f.Folder(ctx, w[0])
		if err != nil {
			t.Fatal(err)
		}
		pool, err := f.ResourcePool(ctx, w[1])
		if err != nil {
			t.Fatal(err)
		}
		if *vm.Parent != folder.Reference() || *vm.ResourcePool != pool.Reference() {
			t.Errorf("%s: parent %s, pool %s; want %s, %s", name, vm.Parent, vm.ResourcePool, w[0], w[1])
		}
	}
}

// runtime.faultToleranceState is "notConfigured" on a VM without FT, as vSphere reports it, and
// the FT state on ft-vm-01; recordReplayState is "inactive". Empty values made pyVmomi fail on
// reading vm.runtime or vm.summary.
func TestDefaultInventoryRuntimeStates(t *testing.T) {
	s := newTestSim(t)
	pc := property.DefaultCollector(connect(t, s).Client)
	for name, want := range map[string]types.VirtualMachineFaultToleranceState{
		"ml-trainer-01":   types.VirtualMachineFaultToleranceStateNotConfigured,
		"ml-inference-01": types.VirtualMachineFaultToleranceStateNotConfigured,
		"ft-vm-01":        types.VirtualMachineFaultToleranceStateRunning,
	} {
		var vm mo.VirtualMachine
		if err := pc.RetrieveOne(context.Background(), s.vmByName(name).Self, []string{"runtime", "summary"}, &vm); err != nil {
			t.Fatal(err)
		}
		if vm.Runtime.FaultToleranceState != want || vm.Summary.Runtime.FaultToleranceState != want {
			t.Errorf("%s: faultToleranceState %q, summary's %q, want %q", name,
				vm.Runtime.FaultToleranceState, vm.Summary.Runtime.FaultToleranceState, want)
		}
		inactive := types.VirtualMachineRecordReplayStateInactive
		if vm.Runtime.RecordReplayState != inactive || vm.Summary.Runtime.RecordReplayState != inactive {
			t.Errorf("%s: recordReplayState %q, summary's %q", name, vm.Runtime.RecordReplayState, vm.Summary.Runtime.RecordReplayState)
		}
	}
}
