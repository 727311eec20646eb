package sim

import (
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/types"
	"github.com/vmware/govmomi/vim25/xml"
)

func TestClusterVMOverridesNotify(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		cluster := object.NewClusterComputeResource(e.c, e.m.Map().Any("ClusterComputeResource").Reference())
		vm := e.vms[0].Self
		reconfigure := func(spec *types.ClusterConfigSpecEx) types.BaseMethodFault {
			return e.wait(cluster.Reconfigure(e.ctx, spec, true))
		}
		add := &types.ClusterConfigSpecEx{
			DasVmConfigSpec: []types.ClusterDasVmConfigSpec{{
				ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
				Info: &types.ClusterDasVmConfigInfo{Key: vm, DasSettings: &types.ClusterDasVmSettings{
					RestartPriority: string(types.ClusterDasVmSettingsRestartPriorityDisabled),
				}},
			}},
			DrsVmConfigSpec: []types.ClusterDrsVmConfigSpec{{
				ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
				Info:            &types.ClusterDrsVmConfigInfo{Key: vm, Enabled: types.NewBool(false), Behavior: types.DrsBehaviorManual},
			}},
		}

		// A watcher on configurationEx sees the overrides arrive.
		calls := 0
		errc := make(chan types.BaseMethodFault, 1)
		err := property.Wait(e.ctx, property.DefaultCollector(e.c), cluster.Reference(), []string{"configurationEx"}, func(changes []types.PropertyChange) bool {
			calls++
			if calls == 1 {
				go func() { errc <- reconfigure(add) }()
				return false
			}
			for _, c := range changes {
				cfg := c.Val.(types.ClusterConfigInfoEx)
				return len(cfg.DasVmConfig) == 1 && len(cfg.DrsVmConfig) == 1 &&
					cfg.DasVmConfig[0].DasSettings.RestartPriority == "disabled" && cfg.DrsVmConfig[0].Behavior == types.DrsBehaviorManual
			}
			return false
		})
		if err != nil {
			t.Fatal(err)
		}
		if f := <-errc; f != nil {
			t.Fatalf("add: %#v", f)
		}

		// A spec failing half-way applies nothing: the DAS override for a second VM is applied
		// by the upstream before the duplicate DRS add fails, and is rolled back.
		half := &types.ClusterConfigSpecEx{
			DasVmConfigSpec: []types.ClusterDasVmConfigSpec{{
				ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
				Info:            &types.ClusterDasVmConfigInfo{Key: e.vms[1].Self},
			}},
			DrsVmConfigSpec: add.DrsVmConfigSpec,
		}
		if _, ok := reconfigure(half).(*types.InvalidArgument); !ok {
			t.Fatal("duplicate add: want InvalidArgument")
		}
		cfg := e.m.Map().Get(cluster.Reference()).(*simVMCluster).ConfigurationEx.(*types.ClusterConfigInfoEx)
		if len(cfg.DasVmConfig) != 1 || len(cfg.DrsVmConfig) != 1 {
			t.Fatalf("after failed add: das %d, drs %d", len(cfg.DasVmConfig), len(cfg.DrsVmConfig))
		}

		// Edit, then remove (removeKey as a ManagedObjectReference, as pyvmomi sends it).
		edit := &types.ClusterConfigSpecEx{DasVmConfigSpec: []types.ClusterDasVmConfigSpec{{
			ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationEdit},
			Info: &types.ClusterDasVmConfigInfo{Key: vm, DasSettings: &types.ClusterDasVmSettings{
				RestartPriority: string(types.ClusterDasVmSettingsRestartPriorityHigh),
			}},
		}}}
		if f := reconfigure(edit); f != nil {
			t.Fatalf("edit: %#v", f)
		}
		if got := cfg.DasVmConfig[0].DasSettings.RestartPriority; got != "high" {
			t.Errorf("edit: restartPriority %q", got)
		}
		remove := &types.ClusterConfigSpecEx{
			DasVmConfigSpec: []types.ClusterDasVmConfigSpec{{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationRemove, RemoveKey: vm}}},
			DrsVmConfigSpec: []types.ClusterDrsVmConfigSpec{{ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationRemove, RemoveKey: vm}}},
		}
		if f := reconfigure(remove); f != nil {
			t.Fatalf("remove: %#v", f)
		}
		cfg = e.m.Map().Get(cluster.Reference()).(*simVMCluster).ConfigurationEx.(*types.ClusterConfigInfoEx)
		if len(cfg.DasVmConfig) != 0 || len(cfg.DrsVmConfig) != 0 {
			t.Errorf("after remove: das %d, drs %d", len(cfg.DasVmConfig), len(cfg.DrsVmConfig))
		}

		// An override for something that is not a VM is refused.
		bad := &types.ClusterConfigSpecEx{DrsVmConfigSpec: []types.ClusterDrsVmConfigSpec{{
			ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
			Info:            &types.ClusterDrsVmConfigInfo{Key: e.host.Self, Behavior: types.DrsBehaviorManual},
		}}}
		if _, ok := reconfigure(bad).(*types.InvalidArgument); !ok {
			t.Error("override for a host: want InvalidArgument")
		}
	})
}

// pyVmomi sends a removeKey VM reference as xsi:type="ManagedObject"; it must decode as the VM.
func TestRemoveKeyAsPyVmomiSendsIt(t *testing.T) {
	in := `<drsVmConfigSpec xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">` +
		`<operation>remove</operation>` +
		`<removeKey xsi:type="ManagedObject" type="VirtualMachine">vm-1</removeKey></drsVmConfigSpec>`
	var spec types.ClusterDrsVmConfigSpec
	dec := xml.NewDecoder(strings.NewReader(in))
	dec.TypeFunc = types.TypeFunc()
	if err := dec.Decode(&spec); err != nil {
		t.Fatal(err)
	}
	want := types.ManagedObjectReference{Type: "VirtualMachine", Value: "vm-1"}
	if got, ok := spec.RemoveKey.(types.ManagedObjectReference); !ok || got != want {
		t.Fatalf("removeKey: want %v, got %#v", want, spec.RemoveKey)
	}
}
