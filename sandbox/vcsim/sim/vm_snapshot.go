package sim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Snapshots are unavailable for a VM with a PCI passthrough device (vSphere docs, VMDirectPath
// I/O: "snapshots" among the features a DirectPath VM loses). vCenter fails the
// snapshot task with SnapshotIncompatibleDeviceInVm naming the device.

// snapshotFault returns the fault for a VM with a passthrough device, or nil.
func snapshotFault(vm *simulator.VirtualMachine) types.BaseMethodFault {
	devices := pciPassthroughDevices(vm.Config.Hardware.Device)
	if len(devices) == 0 {
		return nil
	}
	label := deviceLabel(devices[0])
	cause := &types.DeviceNotSupported{Device: label, Reason: "PCI passthrough device"}
	msg := "Virtual machine is configured to use a device that prevents the snapshot operation: " +
		"Device '" + label + "' is a PCI passthrough device."
	cause.FaultMessage = []types.LocalizableMessage{{Key: "msg.snapshot.error-PCIPASSTHRU", Message: msg}}
	f := &types.SnapshotIncompatibleDeviceInVm{
		Fault: types.LocalizedMethodFault{Fault: cause, LocalizedMessage: msg},
	}
	f.FaultMessage = cause.FaultMessage
	return f
}

// CreateSnapshotTask refuses snapshots of a VM with a passthrough device.
func (vm *passthroughVM) CreateSnapshotTask(ctx *simulator.Context, req *types.CreateSnapshot_Task) soap.HasFault {
	if fault := snapshotFault(vm.VirtualMachine); fault != nil {
		return &methods.CreateSnapshot_TaskBody{Res: &types.CreateSnapshot_TaskResponse{
			Returnval: failedTask(ctx, vm.VirtualMachine, "createSnapshot", fault),
		}}
	}
	return vm.VirtualMachine.CreateSnapshotTask(ctx, req)
}

// CreateSnapshotExTask refuses snapshots of a VM with a passthrough device.
func (vm *passthroughVM) CreateSnapshotExTask(ctx *simulator.Context, req *types.CreateSnapshotEx_Task) soap.HasFault {
	if fault := snapshotFault(vm.VirtualMachine); fault != nil {
		return &methods.CreateSnapshotEx_TaskBody{Res: &types.CreateSnapshotEx_TaskResponse{
			Returnval: failedTask(ctx, vm.VirtualMachine, "createSnapshotEx", fault),
		}}
	}
	return vm.VirtualMachine.CreateSnapshotExTask(ctx, req)
}
