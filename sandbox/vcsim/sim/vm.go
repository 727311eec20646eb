package sim

import (
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// passthroughVM wraps a simulator VirtualMachine for the methods the passthrough rules change
// (ReconfigVM_Task, PowerOnVM_Task, PowerOffVM_Task, SuspendVM_Task, ShutdownGuest,
// CreateSnapshot(Ex)_Task, UpgradeVM_Task).
// Every other method resolves through the embedded original. The simulator calls these methods
// while holding the VM's lock (simulator.go `call`), and a task created here hands that lock to
// its goroutine (task.go `Run`), so the checks and the change they guard see one VM state.
//
// Property changes must go through ctx.Update on the embedded *simulator.VirtualMachine, never
// on the wrapper: the registry updates the managed object it finds by reflection.
type passthroughVM struct {
	*simulator.VirtualMachine
}

func init() {
	OverrideOf(func(_ *simulator.Context, vm *simulator.VirtualMachine) mo.Reference {
		return &passthroughVM{vm}
	},
		"ReconfigVM_Task", "PowerOnVM_Task", "PowerOffVM_Task", "SuspendVM_Task", "ShutdownGuest",
		"CreateSnapshot_Task", "CreateSnapshotEx_Task", "UpgradeVM_Task",
	)
}

// failedTask creates a task on obj that fails with fault, the way vCenter reports a rule broken
// by a task method: the call returns a task and the task ends in error.
//
// vCenter puts the fault's text in the task's `info.error.localizedMessage`, which clients show
// (pyVmomi's `fault.msg`); the upstream task puts the Go type name there. The task has finished
// and its text is set before the client gets the task reference, so no reader sees the type name.
func failedTask(ctx *simulator.Context, obj mo.Reference, name string, fault types.BaseMethodFault) types.ManagedObjectReference {
	ref := simulator.CreateTask(obj, name, func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		return nil, fault
	}).Run(ctx)
	if text := faultMessage(fault); text != "" {
		_ = waitTask(ctx, ref)
		if task, ok := ctx.Map.Get(ref).(*simulator.Task); ok {
			ctx.Map.WithLock(&simulator.Context{}, task, func() {
				if task.Info.Error != nil {
					task.Info.Error.LocalizedMessage = text
				}
			})
		}
	}
	return ref
}

// waitTask waits for a simulator task to finish and returns its fault, if any. It polls with a
// short backoff rather than Task.Wait's fixed 10 ms so wrapped calls stay fast under benchmarks.
func waitTask(ctx *simulator.Context, ref types.ManagedObjectReference) types.BaseMethodFault {
	task, ok := ctx.Map.Get(ref).(*simulator.Task)
	if !ok {
		return nil
	}
	lockCtx := &simulator.Context{} // never share the caller's lock with the task's goroutine
	delay := 20 * time.Microsecond
	for {
		var state types.TaskInfoState
		var fault types.BaseMethodFault
		ctx.Map.WithLock(lockCtx, task, func() {
			state = task.Info.State
			if task.Info.Error != nil {
				fault = task.Info.Error.Fault
			}
		})
		switch state {
		case types.TaskInfoStateSuccess:
			return nil
		case types.TaskInfoStateError:
			return fault
		}
		time.Sleep(delay)
		if delay < 10*time.Millisecond {
			delay *= 2
		}
	}
}
