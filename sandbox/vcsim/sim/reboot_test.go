package sim

import (
	"context"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func TestRebootNeedsMaintenanceModeAndActivatesDevices(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	const name = "esx-gpu-02.lab.local" // T4 enabled, not active
	host := hostObj(c, s, name)
	before := hostRuntime(t, c, s, name)
	if !before.Summary.RebootRequired {
		t.Fatal("precondition: reboot required")
	}

	task, err := rebootHost(c, host, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := taskFault(task.Wait(ctx)).(*types.InvalidState); !ok {
		t.Fatalf("reboot outside maintenance mode: want InvalidState")
	}

	task, _ = host.EnterMaintenanceMode(ctx, 10, false, nil)
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	task, _ = rebootHost(c, host, false)
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	down := hostRuntime(t, c, s, name)
	if down.Runtime.ConnectionState != types.HostSystemConnectionStateNotResponding {
		t.Errorf("connectionState = %s during reboot", down.Runtime.ConnectionState)
	}
	if active := passthruActive(down, "0000:3b:00.0"); active {
		t.Error("device active before the reboot finished")
	}
	if n := s.CompleteReboots(); n != 1 {
		t.Errorf("CompleteReboots = %d", n)
	}
	up := hostRuntime(t, c, s, name)
	if up.Runtime.ConnectionState != types.HostSystemConnectionStateConnected || up.Summary.RebootRequired {
		t.Errorf("after reboot: %s rebootRequired=%v", up.Runtime.ConnectionState, up.Summary.RebootRequired)
	}
	if !passthruActive(up, "0000:3b:00.0") {
		t.Error("enabled device not active after reboot")
	}
	if !up.Runtime.BootTime.After(*before.Runtime.BootTime) {
		t.Error("bootTime not updated")
	}
}

func TestForcedRebootComesBackOnItsOwn(t *testing.T) {
	s := newTestSim(t) // RebootDelay 200ms
	c := connect(t, s).Client
	ctx := context.Background()
	task, err := rebootHost(c, hostObj(c, s, "esx-legacy-01.lab.local"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for hostRuntime(t, c, s, "esx-legacy-01.lab.local").Runtime.ConnectionState != types.HostSystemConnectionStateConnected {
		if time.Now().After(deadline) {
			t.Fatal("host did not reconnect")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func passthruActive(h mo.HostSystem, id string) bool {
	for _, b := range h.Config.PciPassthruInfo {
		if i := b.GetHostPciPassthruInfo(); i.Id == id {
			return i.PassthruActive
		}
	}
	return false
}

func rebootHost(c *vim25.Client, h *object.HostSystem, force bool) (*object.Task, error) {
	res, err := methods.RebootHost_Task(context.Background(), c, &types.RebootHost_Task{This: h.Reference(), Force: force})
	if err != nil {
		return nil, err
	}
	return object.NewTask(c, res.Returnval), nil
}
