package sim

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// UpgradeVMTask upgrades the virtual hardware (config.version) of a powered-off VM, which is how
// a VM gets to version 17 for Dynamic DirectPath I/O. The upstream one answers a powered-on VM
// with InvalidPowerStateFault (the SOAP detail element's name, a type pyVmomi doesn't know)
// instead of InvalidPowerState, an up-to-date one with InvalidState instead of AlreadyUpgraded,
// and takes the versions a host supports from the environment browser as it was when the host
// was added, i.e. before the inventory set the host's ESXi version (a VM on ESXi 6.7 went to
// vmx-21). vSphere API reference, VirtualMachine.UpgradeVM_Task:
//   - the VM must be powered off (InvalidPowerState);
//   - without a version, the latest the VM's host supports; a version newer than that is
//     NotSupported; one not newer than the VM's is AlreadyUpgraded; a malformed one is
//     InvalidArgument;
//   - config.version and summary.config.hwVersion change, notified.
func (vm *passthroughVM) UpgradeVMTask(ctx *simulator.Context, req *types.UpgradeVM_Task) soap.HasFault {
	target, fault := vm.checkUpgrade(ctx, req.Version)
	if fault != nil {
		return &methods.UpgradeVM_TaskBody{Res: &types.UpgradeVM_TaskResponse{
			Returnval: failedTask(ctx, vm.VirtualMachine, "upgradeVm", fault),
		}}
	}
	task := simulator.CreateTask(vm.VirtualMachine, "upgradeVm", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		ctx.Update(vm.VirtualMachine, []types.PropertyChange{
			{Name: "config.version", Op: types.PropertyChangeOpAssign, Val: target.String()},
			{Name: "summary.config.hwVersion", Op: types.PropertyChangeOpAssign, Val: target.String()},
		})
		return nil, nil
	})
	ref := task.Run(ctx)
	_ = waitTask(ctx, ref)
	return &methods.UpgradeVM_TaskBody{Res: &types.UpgradeVM_TaskResponse{Returnval: ref}}
}

// checkUpgrade returns the version to upgrade to, or the fault vCenter gives.
func (vm *passthroughVM) checkUpgrade(ctx *simulator.Context, version string) (types.HardwareVersion, types.BaseMethodFault) {
	if state := vm.Runtime.PowerState; state != types.VirtualMachinePowerStatePoweredOff {
		f := &types.InvalidPowerState{RequestedState: types.VirtualMachinePowerStatePoweredOff, ExistingState: state}
		f.FaultMessage = []types.LocalizableMessage{{Key: "msg.upgrade.powerState",
			Message: fmt.Sprintf("The attempted operation cannot be performed in the current state (%s).", state)}}
		return 0, f
	}
	latest := maxHardwareVersion(hostVersion(vmHost(ctx, vm.VirtualMachine)))
	target := latest
	if version != "" {
		v, err := types.ParseHardwareVersion(version)
		if err != nil {
			f := &types.InvalidArgument{InvalidProperty: "version"}
			f.FaultMessage = []types.LocalizableMessage{{Key: "msg.upgrade.version", Message: fmt.Sprintf("Invalid hardware version %q", version)}}
			return 0, f
		}
		target = v
	}
	if target > latest {
		f := &types.NotSupported{}
		f.FaultMessage = []types.LocalizableMessage{{Key: "msg.upgrade.notSupported",
			Message: fmt.Sprintf("Virtual hardware version %s is not supported by the host (latest %s)", target, latest)}}
		return 0, f
	}
	if current, err := types.ParseHardwareVersion(vm.Config.Version); err == nil && target <= current {
		f := &types.AlreadyUpgraded{}
		f.FaultMessage = []types.LocalizableMessage{{Key: "msg.upgrade.alreadyUpgraded",
			Message: fmt.Sprintf("The virtual hardware is already up to date: the virtual machine has %s, asked for %s", current, target)}}
		return 0, f
	}
	return target, nil
}

// maxHardwareVersion is the latest virtual hardware an ESXi release runs. Source: Broadcom
// KB 315655, "ESXi hosts and compatible virtual machine hardware versions list" (the same table
// as govmomi's types.HardwareVersion comments). A host of unknown version gets the newest.
func maxHardwareVersion(v releaseVersion) types.HardwareVersion {
	switch {
	case v == releaseVersion{}, v.atLeast(9, 0, 0):
		return types.VMX22
	case v.atLeast(8, 0, 2):
		return types.VMX21
	case v.atLeast(8, 0, 0):
		return types.VMX20
	case v.atLeast(7, 0, 2):
		return types.VMX19
	case v.atLeast(7, 0, 1):
		return types.VMX18
	case v.atLeast(7, 0, 0):
		return types.VMX17
	case v.atLeast(6, 7, 2):
		return types.VMX15
	case v.atLeast(6, 7, 0):
		return types.VMX14
	case v.atLeast(6, 5, 0):
		return types.VMX13
	default:
		return types.VMX11
	}
}
