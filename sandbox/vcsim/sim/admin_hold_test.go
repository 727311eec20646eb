package sim

import (
	"context"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

type heldListing struct {
	Tasks    []HeldTask
	Pending  map[string]int
	Released int
}

func taskState(t *testing.T, c *vim25.Client, task *object.Task) types.TaskInfoState {
	t.Helper()
	var o mo.Task
	if err := property.DefaultCollector(c).RetrieveOne(context.Background(), task.Reference(), []string{"info.state"}, &o); err != nil {
		t.Fatal(err)
	}
	return o.Info.State
}

func vmConfig(t *testing.T, c *vim25.Client, vm *object.VirtualMachine) *types.VirtualMachineConfigInfo {
	t.Helper()
	var o mo.VirtualMachine
	if err := vm.Properties(context.Background(), vm.Reference(), []string{"config"}, &o); err != nil {
		t.Fatal(err)
	}
	return o.Config
}

func TestAHeldReconfigureRunsOnlyWhenReleasedAndChecksChangeVersionThen(t *testing.T) {
	s, srv := serveTest(t)
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	vm := object.NewVirtualMachine(c, s.vmByName("ml-trainer-01").Self)
	t.Cleanup(func() { s.ReleaseTasks("") })
	admin(t, srv, "POST", "/tasks/hold", map[string]any{"method": "ReconfigVM_Task", "count": 2}, nil)
	before := vmConfig(t, c, vm)

	// Held: the task runs and the VM is unchanged until it is released.
	plain, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{Annotation: "held"})
	if err != nil {
		t.Fatal(err)
	}
	stale, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{Annotation: "stale", ChangeVersion: before.ChangeVersion})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	for _, task := range []*object.Task{plain, stale} {
		if st := taskState(t, c, task); st != types.TaskInfoStateRunning {
			t.Fatalf("held task %s: %s, want running", task.Reference().Value, st)
		}
	}
	if got := vmConfig(t, c, vm); got.Annotation != before.Annotation || got.ChangeVersion != before.ChangeVersion {
		t.Fatalf("a held reconfigure changed the VM: %q", got.Annotation)
	}
	var list heldListing
	admin(t, srv, "GET", "/tasks/held", nil, &list)
	if len(list.Tasks) != 2 || list.Tasks[0].Released || list.Tasks[0].EntityName != "ml-trainer-01" || len(list.Pending) != 0 {
		t.Fatalf("GET /tasks/held: %+v", list)
	}

	// The holds are used up: the next reconfigure runs at once (and moves changeVersion on).
	next, err := vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{Annotation: "next"})
	if err != nil || next.Wait(ctx) != nil {
		t.Fatalf("unheld reconfigure: %v", err)
	}

	admin(t, srv, "POST", "/tasks/release", map[string]string{"method": "ReconfigVM_Task"}, &list)
	if list.Released != 2 || !list.Tasks[0].Released || !list.Tasks[1].Released {
		t.Fatalf("release: %+v", list)
	}
	if err := plain.Wait(ctx); err != nil {
		t.Fatalf("released reconfigure: %v", err)
	}
	if _, ok := taskFault(stale.Wait(ctx)).(*types.ConcurrentAccess); !ok {
		t.Fatal("a held reconfigure with a changeVersion made stale meanwhile must fail with ConcurrentAccess")
	}
	if got := vmConfig(t, c, vm); got.Annotation != "held" {
		t.Errorf("annotation %q, want the released reconfigure's", got.Annotation)
	}
	counts, _ := s.Counters.Snapshot()
	if counts["ReconfigVM_Task"] != 3 {
		t.Errorf("ReconfigVM_Task counted %d times, want 3 (a held call counts once)", counts["ReconfigVM_Task"])
	}
}

func TestAHeldMaintenanceModeTaskEntersOnlyWhenReleased(t *testing.T) {
	s, srv := serveTest(t)
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	const name = "esx-gpu-02.lab.local" // only powered-off VMs: it drains at once
	t.Cleanup(func() { s.ReleaseTasks("") })
	admin(t, srv, "POST", "/tasks/hold", map[string]any{"method": "EnterMaintenanceMode_Task"}, nil)
	task, err := hostObj(c, s, name).EnterMaintenanceMode(ctx, 0, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if st := taskState(t, c, task); st != types.TaskInfoStateRunning {
		t.Fatalf("held task: %s, want running", st)
	}
	if hostRuntime(t, c, s, name).Runtime.InMaintenanceMode {
		t.Fatal("in maintenance mode before the task was released")
	}
	admin(t, srv, "POST", "/tasks/release", nil, nil)
	if err := task.Wait(ctx); err != nil {
		t.Fatalf("released task: %v", err)
	}
	if !hostRuntime(t, c, s, name).Runtime.InMaintenanceMode {
		t.Fatal("not in maintenance mode after the released task succeeded")
	}
}

func TestHoldRefusesOtherMethods(t *testing.T) {
	_, srv := serveTest(t)
	if st := adminStatus(t, srv, "POST", "/tasks/hold", map[string]any{"method": "PowerOnVM_Task"}); st != 400 {
		t.Errorf("status %d, want 400", st)
	}
}
