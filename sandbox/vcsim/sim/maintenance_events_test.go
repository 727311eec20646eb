package sim

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/event"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func eventsOfType(t *testing.T, c *vim25.Client, kinds ...string) []types.BaseEvent {
	t.Helper()
	evs, err := event.NewManager(c).QueryEvents(context.Background(), types.EventFilterSpec{EventTypeId: kinds})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// Maintenance mode posts vCenter's events (entering, a DrsVmMigratedEvent per DRS migration,
// entered, exit) as the session's user, and a VM moved to a host without Gen2 support loses
// vmDirectPathGen2Active (reason vmNptIncompatibleHost).
func TestMaintenanceEventsAndGen2(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	const name = "esx-gpu-01.lab.local"
	host := hostObj(c, s, name)
	gen2 := s.vmByName("vmfex-gen2-01")

	active := func() (bool, []string) {
		var vm mo.VirtualMachine
		if err := property.DefaultCollector(c).RetrieveOne(ctx, gen2.Self, []string{"runtime.device", "runtime.host"}, &vm); err != nil {
			t.Fatal(err)
		}
		on := false
		var reasons []string
		for _, d := range vm.Runtime.Device {
			if st, ok := d.RuntimeState.(*types.VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeState); ok {
				on = on || (st.VmDirectPathGen2Active != nil && *st.VmDirectPathGen2Active)
				reasons = append(reasons, st.VmDirectPathGen2InactiveReasonOther...)
			}
		}
		return on, reasons
	}
	if on, _ := active(); !on {
		t.Fatal("vmfex-gen2-01 not Gen2-active before the test")
	}

	// ml-inference-01 (passthrough) blocks; DRS moves vmfex-gen2-01 to a host without Gen2.
	task, err := host.EnterMaintenanceMode(ctx, 1, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = task.Wait(ctx)
	if *gen2.Runtime.Host == s.Host(name).Self {
		t.Fatal("vmfex-gen2-01 was not migrated")
	}
	if on, reasons := active(); on || len(reasons) == 0 || reasons[0] != "vmNptIncompatibleHost" {
		t.Errorf("after migration: active %v, reasons %v", on, reasons)
	}

	migrated := false
	for _, e := range eventsOfType(t, c, "DrsVmMigratedEvent") {
		m := e.(*types.DrsVmMigratedEvent)
		if m.Vm != nil && m.Vm.Vm == gen2.Self && m.SourceHost.Host == s.Host(name).Self && m.Host.Host == *gen2.Runtime.Host {
			migrated = true
			if m.UserName == "" || m.FullFormattedMessage == "" || m.Datacenter == nil || m.ComputeResource == nil {
				t.Errorf("migration event %+v", m.Event)
			}
		}
	}
	if !migrated {
		t.Error("no DrsVmMigratedEvent for vmfex-gen2-01")
	}
	if n := len(eventsOfType(t, c, "EnteringMaintenanceModeEvent")); n != 1 {
		t.Errorf("%d EnteringMaintenanceModeEvent, want 1", n)
	}
	if n := len(eventsOfType(t, c, "EnteredMaintenanceModeEvent")); n != 0 {
		t.Errorf("%d EnteredMaintenanceModeEvent before the host entered", n)
	}

	off, err := vmByName(t, c, s, "ml-inference-01").PowerOff(ctx)
	if err == nil {
		err = off.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []func() error{
		func() error {
			task, err := host.EnterMaintenanceMode(ctx, 5, false, nil)
			if err != nil {
				return err
			}
			return task.Wait(ctx)
		},
		func() error {
			task, err := host.ExitMaintenanceMode(ctx, 0)
			if err != nil {
				return err
			}
			return task.Wait(ctx)
		},
	} {
		if err := op(); err != nil {
			t.Fatal(err)
		}
	}
	for _, kind := range []string{"EnteredMaintenanceModeEvent", "ExitMaintenanceModeEvent"} {
		evs := eventsOfType(t, c, kind)
		if len(evs) != 1 {
			t.Errorf("%d %s, want 1", len(evs), kind)
			continue
		}
		if h := evs[0].GetEvent().Host; h == nil || h.Host != s.Host(name).Self {
			t.Errorf("%s host %+v", kind, h)
		}
	}
}
