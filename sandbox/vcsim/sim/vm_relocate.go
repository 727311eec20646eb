package sim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The upstream simulator's VirtualMachine.RelocateVMTask (simulator/virtual_machine.go)
// publishes the VM's new `resourcePool` but leaves the pools' `vm` lists as they were (it
// removes the target pool's own reference from the target's list, a no-op), so ResourcePool.vm
// still names the VM in its old pool and never in the new one. A relocate with spec.folder
// re-parents through Folder.MoveIntoFolderTask directly, without what movingFolder publishes.
// relocatingVM runs the upstream relocate inside its own task, then fixes both.
// (The same upstream code leaves HostSystem.vm alone on a host change; not changed here.)
type relocatingVM struct {
	*simulator.VirtualMachine
}

func init() {
	OverrideOf(func(_ *simulator.Context, vm *simulator.VirtualMachine) mo.Reference {
		return &relocatingVM{vm}
	}, "RelocateVM_Task")
}

func (vm *relocatingVM) RelocateVMTask(ctx *simulator.Context, req *types.RelocateVM_Task) soap.HasFault {
	task := simulator.CreateTask(vm.VirtualMachine, "relocateVm", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		pool, from := *vm.ResourcePool, parents(ctx, []types.ManagedObjectReference{vm.Self})
		res := vm.VirtualMachine.RelocateVMTask(ctx, req).(*methods.RelocateVM_TaskBody).Res
		if fault := waitTask(ctx, res.Returnval); fault != nil {
			return nil, fault
		}
		if to := req.Spec.Pool; to != nil && *to != pool {
			movePoolVM(ctx, vm.Self, pool, *to)
		}
		publishMoves(ctx, from)
		return nil, nil
	})
	return &methods.RelocateVM_TaskBody{Res: &types.RelocateVM_TaskResponse{Returnval: task.Run(ctx)}}
}

// movePoolVM moves a VM from one pool's `vm` list to the other's, notifying both.
func movePoolVM(ctx *simulator.Context, vm, from, to types.ManagedObjectReference) {
	if p, ok := ctx.Map.Get(from).(*simulator.ResourcePool); ok {
		ctx.WithLock(p, func() {
			list := append([]types.ManagedObjectReference(nil), p.Vm...)
			simulator.RemoveReference(&list, vm)
			ctx.Update(p, []types.PropertyChange{{Name: "vm", Val: list}})
		})
	}
	if p, ok := ctx.Map.Get(to).(*simulator.ResourcePool); ok {
		ctx.WithLock(p, func() {
			if simulator.FindReference(p.Vm, vm) == nil {
				list := append(append([]types.ManagedObjectReference(nil), p.Vm...), vm)
				ctx.Update(p, []types.PropertyChange{{Name: "vm", Val: list}})
			}
		})
	}
}
