package sim

import (
	"fmt"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// registryHooks is a registry handler (Registry.AddHandler, installed by Install): the
// registry calls it for every object put in it and every property update, which reaches the
// objects upstream creates on its own (VMs from CreateVM_Task/CloneVM_Task/RegisterVM_Task,
// every Task) without overriding each method that creates them.
type registryHooks struct{}

var registryHooksRef = types.ManagedObjectReference{Type: "DpioRegistryHooks", Value: "dpio-registry-hooks"}

func (registryHooks) Reference() types.ManagedObjectReference { return registryHooksRef }

// PutObject runs while the object is being created under its creator's lock, before any client
// can read it, so fields are set directly.
func (registryHooks) PutObject(ctx *simulator.Context, obj mo.Reference) {
	switch o := obj.(type) {
	case *simulator.VirtualMachine:
		runtimeStates(o)
	case *simulator.Task:
		taskIdentity(ctx, o)
	}
}

// UpdateObject runs after the change is applied to the object and may correct it; the changes
// are the ones PropertyCollectors queue for WaitForUpdates, so a correction of a change's value
// reaches them as well.
func (registryHooks) UpdateObject(_ *simulator.Context, obj mo.Reference, changes []types.PropertyChange) {
	if t, ok := obj.(*mo.Task); ok {
		taskFaultText(t, changes)
	}
}

func (registryHooks) RemoveObject(*simulator.Context, types.ManagedObjectReference) {}

// callers remembers, per registry and managed object, the user of the session that last called
// a method on it. Tasks are created on the called object (or, e.g. CreateVM_Task, on the folder
// called), so the task's initiator is found by its entity.
var callers sync.Map // callerKey -> string

type callerKey struct {
	reg *simulator.Registry
	ref types.ManagedObjectReference
}

func noteCaller(ctx *simulator.Context, ref types.ManagedObjectReference) {
	if ctx.Session.UserName != "" {
		callers.Store(callerKey{ctx.Map, ref}, ctx.Session.UserName)
	}
}

// dropCallers forgets a closed simulator's callers.
func dropCallers(reg *simulator.Registry) {
	callers.Range(func(k, _ any) bool {
		if k.(callerKey).reg == reg {
			callers.Delete(k)
		}
		return true
	})
}

// taskIdentity sets what vCenter reports about who and what a task is for: info.entityName is
// the entity's name and info.reason.userName the user of the session that started it
// (TaskInfo, TaskReasonUser). Upstream's CreateTask (task.go) puts the entity's moref value
// ("vm-42") and "vcsim" there.
func taskIdentity(ctx *simulator.Context, t *simulator.Task) {
	ref := t.Info.Entity
	if ref == nil {
		return
	}
	if e, ok := ctx.Map.Get(*ref).(mo.Entity); ok && e.Entity().Name != "" {
		t.Info.EntityName = e.Entity().Name
	}
	if user, ok := callers.Load(callerKey{ctx.Map, *ref}); ok {
		if r, ok := t.Info.Reason.(*types.TaskReasonUser); ok {
			r.UserName = user.(string)
		}
	}
}

// taskFaultText replaces the Go type name upstream's Task.Run (task.go) puts in a failed task's
// info.error.localizedMessage ("*types.InvalidPowerState") with vCenter's text for the fault:
// its faultMessage lines when it has some (the sandbox's rules set them), otherwise the
// message vCenter's catalogue has for the fault type (vimLocale), e.g. "The attempted operation
// cannot be performed in the current state (Powered off)."
func taskFaultText(t *mo.Task, changes []types.PropertyChange) {
	for i := range changes {
		if changes[i].Name != "info.error" && changes[i].Name != "info" {
			continue
		}
		e := t.Info.Error
		if e == nil || e.Fault == nil || e.LocalizedMessage != fmt.Sprintf("%T", e.Fault) {
			continue
		}
		e.LocalizedMessage = faultText(e.Fault)
		if v, ok := changes[i].Val.(types.LocalizedMethodFault); ok {
			v.LocalizedMessage = e.LocalizedMessage
			changes[i].Val = v
		}
	}
}

// powerStateText is how vCenter names a power state in messages.
var powerStateText = map[types.VirtualMachinePowerState]string{
	types.VirtualMachinePowerStatePoweredOff: "Powered off",
	types.VirtualMachinePowerStatePoweredOn:  "Powered on",
	types.VirtualMachinePowerStateSuspended:  "Suspended",
}

// faultText is the message vCenter gives a fault (vSphere's English message catalogue, as seen
// in task errors and the vSphere Client).
func faultText(f types.BaseMethodFault) string {
	if text := faultMessage(f); text != "" {
		return text
	}
	switch f := f.(type) {
	case *types.InvalidPowerState:
		return fmt.Sprintf("The attempted operation cannot be performed in the current state (%s).", powerStateText[f.ExistingState])
	case *types.InvalidState:
		return "The operation is not allowed in the current state."
	case *types.NotSupported:
		return "The operation is not supported on the object."
	case *types.InvalidArgument:
		if f.InvalidProperty != "" {
			return fmt.Sprintf("A specified parameter was not correct: %s", f.InvalidProperty)
		}
		return "A specified parameter was not correct: "
	case *types.Timedout:
		return "Operation timed out."
	case *types.ManagedObjectNotFound:
		return "The object has already been deleted or has not been completely created"
	case *types.NoPermission:
		return "Permission to perform this operation was denied."
	case *types.FileAlreadyExists:
		return fmt.Sprintf("Cannot complete the operation because the file or folder %s already exists", f.File)
	case *types.DuplicateName:
		return fmt.Sprintf("The name '%s' already exists.", f.Name)
	}
	// Unknown to this table: the fault's type name without the Go package, as vCenter's
	// message never names Go types.
	return strings.TrimPrefix(fmt.Sprintf("%T", f), "*types.")
}
