package sim

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// watch starts a WaitForUpdatesEx watcher (property.Wait) on one property of obj and returns
// once the watcher holds the current value, so what it reports later is a notification. The
// channel yields nil when want(value) holds, or the error after 5 s.
func watch(t *testing.T, c *vim25.Client, obj types.ManagedObjectReference, prop string, want func(any) bool) <-chan error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	ready := make(chan struct{})
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- property.Wait(ctx, property.DefaultCollector(c), obj, []string{prop}, func(ch []types.PropertyChange) bool {
			once.Do(func() { close(ready) })
			for _, p := range ch {
				if p.Name == prop && want(p.Val) {
					return true
				}
			}
			return false
		})
	}()
	select {
	case <-ready:
	case <-ctx.Done():
		t.Fatalf("watcher on %s %s never started", obj, prop)
	}
	return done
}

func isRef(want types.ManagedObjectReference) func(any) bool {
	return func(v any) bool { r, ok := v.(types.ManagedObjectReference); return ok && r == want }
}

func lists(refs []types.ManagedObjectReference, ref types.ManagedObjectReference) bool {
	for _, r := range refs {
		if r == ref {
			return true
		}
	}
	return false
}

// waitOK(t)(obj.Method(…)) waits for a task that must succeed.
func waitOK(t *testing.T) func(*object.Task, error) {
	return func(task *object.Task, err error) {
		t.Helper()
		if err == nil {
			err = task.Wait(context.Background())
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A tenant VM moves between folders and pools the way an administrator re-scopes it; a client
// watching `parent` / `resourcePool` hears of it, and the folders' and pools' lists follow.
func TestMoveIntoFolderAndRelocatePoolNotify(t *testing.T) {
	_, c, f := newTenancySim(t)
	ctx := context.Background()
	vm, err := f.VirtualMachine(ctx, "/DC1/vm/ml-team/prod/a")
	if err != nil {
		t.Fatal(err)
	}
	prod, err := f.Folder(ctx, "/DC1/vm/ml-team/prod")
	if err != nil {
		t.Fatal(err)
	}
	team, err := f.Folder(ctx, "/DC1/vm/ml-team")
	if err != nil {
		t.Fatal(err)
	}
	batch, err := f.ResourcePool(ctx, "/DC1/host/C1/Resources/ml-team/batch")
	if err != nil {
		t.Fatal(err)
	}
	pool, err := f.ResourcePool(ctx, "/DC1/host/C1/Resources/ml-team")
	if err != nil {
		t.Fatal(err)
	}

	seen := watch(t, c, vm.Reference(), "parent", isRef(team.Reference()))
	waitOK(t)(team.MoveInto(ctx, []types.ManagedObjectReference{vm.Reference()}))
	if err := <-seen; err != nil {
		t.Errorf("MoveIntoFolder_Task: parent not notified: %v", err)
	}
	var from, to mo.Folder
	if err := prod.Properties(ctx, prod.Reference(), []string{"childEntity"}, &from); err != nil {
		t.Fatal(err)
	}
	if err := team.Properties(ctx, team.Reference(), []string{"childEntity"}, &to); err != nil {
		t.Fatal(err)
	}
	if lists(from.ChildEntity, vm.Reference()) || !lists(to.ChildEntity, vm.Reference()) {
		t.Errorf("childEntity after the move: old folder %v, new folder %v", from.ChildEntity, to.ChildEntity)
	}

	seen = watch(t, c, vm.Reference(), "resourcePool", isRef(pool.Reference()))
	ref := pool.Reference()
	waitOK(t)(vm.Relocate(ctx, types.VirtualMachineRelocateSpec{Pool: &ref}, types.VirtualMachineMovePriorityDefaultPriority))
	if err := <-seen; err != nil {
		t.Errorf("RelocateVM_Task (pool only): resourcePool not notified: %v", err)
	}
	var old, now mo.ResourcePool
	if err := batch.Properties(ctx, batch.Reference(), []string{"vm"}, &old); err != nil {
		t.Fatal(err)
	}
	if err := pool.Properties(ctx, pool.Reference(), []string{"vm"}, &now); err != nil {
		t.Fatal(err)
	}
	if lists(old.Vm, vm.Reference()) || !lists(now.Vm, vm.Reference()) {
		t.Errorf("vm lists after the relocate: old pool %v, new pool %v", old.Vm, now.Vm)
	}

	// A relocate that also names a folder moves the VM there with the same notification.
	seen = watch(t, c, vm.Reference(), "parent", isRef(prod.Reference()))
	folder, ref := prod.Reference(), batch.Reference()
	waitOK(t)(vm.Relocate(ctx, types.VirtualMachineRelocateSpec{Folder: &folder, Pool: &ref}, types.VirtualMachineMovePriorityDefaultPriority))
	if err := <-seen; err != nil {
		t.Errorf("RelocateVM_Task (folder): parent not notified: %v", err)
	}
}

// Rename_Task on a folder publishes its name; the VMs' paths follow.
func TestRenameFolderNotifies(t *testing.T) {
	_, c, f := newTenancySim(t)
	ctx := context.Background()
	prod, err := f.Folder(ctx, "/DC1/vm/ml-team/prod")
	if err != nil {
		t.Fatal(err)
	}
	seen := watch(t, c, prod.Reference(), "name", func(v any) bool { return v == "production" })
	waitOK(t)(prod.Rename(ctx, "production"))
	if err := <-seen; err != nil {
		t.Errorf("Rename_Task: name not notified: %v", err)
	}
	if _, err := f.VirtualMachine(ctx, "/DC1/vm/ml-team/production/a"); err != nil {
		t.Error(err)
	}
}
