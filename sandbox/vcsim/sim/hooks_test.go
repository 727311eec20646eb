package sim

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// A task names its entity by name and its initiator by the session's user, and a failed task
// carries vCenter's fault text, not the Go type name: PowerOff of a powered-off VM fails with
// InvalidPowerState "The attempted operation cannot be performed in the current state
// (Powered off)."
func TestTaskIdentityAndFaultText(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	user, err := session.NewManager(c).UserSession(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vm := s.vmByName("snap-vm-01") // powered off
	task, err := object.NewVirtualMachine(c, vm.Self).PowerOff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitErr := task.Wait(ctx) // read from WaitForUpdatesEx
	var tm mo.Task
	if err := property.DefaultCollector(c).RetrieveOne(ctx, task.Reference(), []string{"info"}, &tm); err != nil {
		t.Fatal(err)
	}
	info := tm.Info
	if info.EntityName != "snap-vm-01" {
		t.Errorf("entityName %q, want snap-vm-01", info.EntityName)
	}
	if r, ok := info.Reason.(*types.TaskReasonUser); !ok || r.UserName != user.UserName {
		t.Errorf("reason %#v, want user %q", info.Reason, user.UserName)
	}
	if info.Error == nil {
		t.Fatal("power-off of a powered-off VM succeeded")
	}
	if _, ok := info.Error.Fault.(*types.InvalidPowerState); !ok {
		t.Errorf("fault %T", info.Error.Fault)
	}
	want := "The attempted operation cannot be performed in the current state (Powered off)."
	if info.Error.LocalizedMessage != want {
		t.Errorf("localizedMessage %q, want %q", info.Error.LocalizedMessage, want)
	}
	if waitErr == nil || waitErr.Error() != want {
		t.Errorf("task.Wait: %v, want %q", waitErr, want)
	}
}
