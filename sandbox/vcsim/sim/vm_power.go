package sim

import (
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// powerOnMu serialises the power-on of VMs with passthrough devices from check to completed
// power state, so two VMs can never both take the same host device.
var powerOnMu sync.Mutex

// PowerOnVMTask checks the DirectPath I/O power-on rules (checkPowerOn), picks the host device
// for each Dynamic DirectPath device, then powers on through the upstream simulator and
// recomputes the Gen2 runtime state.
func (vm *passthroughVM) PowerOnVMTask(ctx *simulator.Context, req *types.PowerOnVM_Task) soap.HasFault {
	res, fault := powerOnVM(ctx, vm.VirtualMachine, req)
	if fault != nil {
		return &methods.PowerOnVM_TaskBody{Res: &types.PowerOnVM_TaskResponse{
			Returnval: failedTask(ctx, vm.VirtualMachine, "powerOn", fault),
		}}
	}
	return res
}

// powerOnVM runs the rules and the upstream power-on for one VM (held locked by the caller). A
// broken rule comes back as fault, without a task, so PowerOnMultiVM can report it as not
// attempted; otherwise res is the upstream's answer, its task already finished.
func powerOnVM(ctx *simulator.Context, vm *simulator.VirtualMachine, req *types.PowerOnVM_Task) (soap.HasFault, types.BaseMethodFault) {
	passthrough := hasPCIPassthrough(vm) && vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn
	if passthrough {
		powerOnMu.Lock()
		defer powerOnMu.Unlock()
		assigned, fault := checkPowerOn(ctx, vm)
		if fault != nil {
			return nil, fault
		}
		setAssignedIDs(ctx, vm, assigned)
	}

	res := vm.PowerOnVMTask(ctx, req)
	body, ok := res.(*methods.PowerOnVM_TaskBody)
	failed := !ok || body.Res == nil || waitTask(ctx, body.Res.Returnval) != nil
	if failed && passthrough {
		clearAssignedIDs(ctx, vm)
	}
	refreshGen2(ctx, vm)
	return res, nil
}

// checkPowerOn returns the fault ESXi gives when powering on a VM with DirectPath I/O devices,
// or the host device chosen for each Dynamic DirectPath backing.
func checkPowerOn(ctx *simulator.Context, vm *simulator.VirtualMachine) (map[*types.VirtualPCIPassthroughDynamicBackingInfo]string, types.BaseMethodFault) {
	host := vmHost(ctx, vm)

	// KB 437651: nested hardware virtualization is refused with a passthrough device. The
	// reconfigure is accepted; ESXi refuses the combination when the VM powers on.
	if n := vm.Config.NestedHVEnabled; n != nil && *n {
		return nil, vmConfigFault("msg.vhv.passthrough",
			"Virtualized hardware-assisted virtualization (nested HV) is not supported for a virtual machine with PCI passthrough devices")
	}

	// BOSH vSphere CPI PR #372: without a full memory reservation power-on fails with this text.
	if !fullMemoryReservation(vm) {
		return nil, vmConfigFault("msg.pciPassthru.memReservation",
			"Invalid memory setting: memory reservation (sched.mem.min) should be equal to memsize(%d).",
			vm.Config.Hardware.MemoryMB)
	}

	held := deviceHolders(ctx, host, vm)
	assigned := map[*types.VirtualPCIPassthroughDynamicBackingInfo]string{}
	for _, d := range pciPassthroughDevices(vm.Config.Hardware.Device) {
		switch b := d.Backing.(type) {
		case *types.VirtualPCIPassthroughDeviceBackingInfo:
			if fault := checkStaticBacking(host, d, b, held); fault != nil {
				return nil, fault
			}
			held[b.Id] = vm
		case *types.VirtualPCIPassthroughDynamicBackingInfo:
			id := pickDynamicDevice(host, b, held)
			if id == "" {
				return nil, vmConfigFault("msg.pciPassthru.dynamic.noDevice",
					"%s: no free passthrough device on host %s matches the allowed devices%s",
					deviceLabel(d), hostName(host), labelSuffix(b.CustomLabel))
			}
			held[id] = vm
			assigned[b] = id
		default:
			return nil, vmConfigFault("msg.pciPassthru.backing", "%s has no DirectPath I/O backing", deviceLabel(d))
		}
	}
	if fault := checkMMIO(ctx, vm, host, vmDeviceIDs(vm, assigned)); fault != nil {
		return nil, fault
	}
	return assigned, nil
}

// vmDeviceIDs lists the host PCI addresses a VM's passthrough devices use once it runs: static
// ids, and for Dynamic DirectPath the device picked for the backing.
func vmDeviceIDs(vm *simulator.VirtualMachine, assigned map[*types.VirtualPCIPassthroughDynamicBackingInfo]string) []string {
	var ids []string
	for _, d := range pciPassthroughDevices(vm.Config.Hardware.Device) {
		switch b := d.Backing.(type) {
		case *types.VirtualPCIPassthroughDeviceBackingInfo:
			ids = append(ids, b.Id)
		case *types.VirtualPCIPassthroughDynamicBackingInfo:
			ids = append(ids, assigned[b])
		}
	}
	return ids
}

// checkStaticBacking applies the static DirectPath rules: the device must be an active
// passthrough device of the VM's host (HostPciPassthruInfo.passthruActive; KB 309986), the
// backing's systemId must be that host's, its deviceId the lower-case hex of the device id and
// its vendorId the device's (govmomi #2248/#2249: a decimal deviceId makes power-on fail), and
// no other powered-on VM may hold the device.
func checkStaticBacking(host *simulator.HostSystem, d *types.VirtualPCIPassthrough,
	b *types.VirtualPCIPassthroughDeviceBackingInfo, held map[string]*simulator.VirtualMachine) types.BaseMethodFault {
	label := deviceLabel(d)
	info := hostPassthruByID(host, b.Id)
	pci := hostPciDevice(host, b.Id)
	if info == nil || pci == nil || !info.PassthruActive {
		return vmConfigFault("msg.pciPassthru.notActive",
			"%s: device %s is not an active passthrough device on host %s", label, b.Id, hostName(host))
	}
	if b.SystemId != hostSystemID(host) {
		return vmConfigFault("msg.pciPassthru.systemId",
			"%s: systemId %q does not match host %s (%s)", label, b.SystemId, hostName(host), hostSystemID(host))
	}
	if want := pciIDHex(pci.DeviceId); b.DeviceId != want || !lowerHex(b.DeviceId) {
		return vmConfigFault("msg.pciPassthru.deviceId",
			"%s: deviceId %q does not match device %s (want lower-case hex %q)", label, b.DeviceId, b.Id, want)
	}
	if uint16(b.VendorId) != uint16(pci.VendorId) {
		return vmConfigFault("msg.pciPassthru.vendorId",
			"%s: vendorId %#04x does not match device %s (%#04x)", label, uint16(b.VendorId), b.Id, uint16(pci.VendorId))
	}
	if other, ok := held[b.Id]; ok {
		return vmConfigFault("msg.pciPassthru.inUse",
			"%s: device %s is already in use by virtual machine %s", label, b.Id, other.Name)
	}
	return nil
}

// pickDynamicDevice chooses, in host order, the first active passthrough device that nobody
// holds, matches one of allowedDevice (vendor and device id) and, when the backing has a
// customLabel, carries that hardwareLabel (vSphere 7.0 Dynamic DirectPath I/O).
func pickDynamicDevice(host *simulator.HostSystem, b *types.VirtualPCIPassthroughDynamicBackingInfo,
	held map[string]*simulator.VirtualMachine) string {
	for _, info := range hostPassthruInfo(host) {
		if !info.PassthruActive || held[info.Id] != nil {
			continue
		}
		if b.CustomLabel != "" && info.HardwareLabel != b.CustomLabel {
			continue
		}
		pci := hostPciDevice(host, info.Id)
		if pci == nil {
			continue
		}
		for _, a := range b.AllowedDevice {
			if pciIDMatches(a.VendorId, pci.VendorId) && pciIDMatches(a.DeviceId, pci.DeviceId) {
				return info.Id
			}
		}
	}
	return ""
}

func labelSuffix(label string) string {
	if label == "" {
		return ""
	}
	return " with label " + label
}

// setAssignedIDs records the device picked for each Dynamic DirectPath backing in its
// assignedId, visible in config.hardware.device while the VM runs.
func setAssignedIDs(ctx *simulator.Context, vm *simulator.VirtualMachine, assigned map[*types.VirtualPCIPassthroughDynamicBackingInfo]string) {
	if len(assigned) == 0 {
		return
	}
	for b, id := range assigned {
		b.AssignedId = id
	}
	ctx.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
}

// clearAssignedIDs releases the devices Dynamic DirectPath backings held (at power-off, or
// when the power-on failed).
func clearAssignedIDs(ctx *simulator.Context, vm *simulator.VirtualMachine) {
	changed := false
	for _, d := range pciPassthroughDevices(vm.Config.Hardware.Device) {
		if b, ok := d.Backing.(*types.VirtualPCIPassthroughDynamicBackingInfo); ok && b.AssignedId != "" {
			b.AssignedId = ""
			changed = true
		}
	}
	if changed {
		ctx.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: vm.Config.Hardware.Device}})
	}
}

// PowerOffVMTask powers off through the upstream simulator, then releases Dynamic DirectPath
// devices and clears the Gen2 runtime state.
func (vm *passthroughVM) PowerOffVMTask(ctx *simulator.Context, req *types.PowerOffVM_Task) soap.HasFault {
	res := vm.VirtualMachine.PowerOffVMTask(ctx, req)
	if body, ok := res.(*methods.PowerOffVM_TaskBody); ok && body.Res != nil {
		if waitTask(ctx, body.Res.Returnval) == nil {
			clearAssignedIDs(ctx, vm.VirtualMachine)
		}
		refreshGen2(ctx, vm.VirtualMachine)
	}
	return res
}

// ShutdownGuest ends, like a power-off, with Dynamic DirectPath devices released and no Gen2
// runtime state: ESXi frees a VM's passthrough devices whenever it stops running, however it
// stopped (vSphere API reference, VirtualPCIPassthroughDynamicBackingInfo.assignedId: set "while
// the virtual machine is powered on"). The upstream method powers off in a task of its own that
// skips both, so the guest here shuts down at once through the power-off path. The call still
// returns without a task, as on vSphere (VirtualMachine.ShutdownGuest).
func (vm *passthroughVM) ShutdownGuest(ctx *simulator.Context, req *types.ShutdownGuest) soap.HasFault {
	if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		return vm.VirtualMachine.ShutdownGuest(ctx, req) // InvalidPowerState, as upstream
	}
	res := vm.PowerOffVMTask(ctx, &types.PowerOffVM_Task{This: req.This})
	if body, ok := res.(*methods.PowerOffVM_TaskBody); ok && body.Fault_ != nil {
		return &methods.ShutdownGuestBody{Fault_: body.Fault_}
	}
	return &methods.ShutdownGuestBody{Res: &types.ShutdownGuestResponse{}}
}

// SuspendVMTask refuses to suspend a VM with a PCI passthrough device: suspend and resume are
// unavailable with DirectPath I/O (vSphere docs, VMDirectPath I/O).
func (vm *passthroughVM) SuspendVMTask(ctx *simulator.Context, req *types.SuspendVM_Task) soap.HasFault {
	if hasPCIPassthrough(vm.VirtualMachine) {
		f := &types.NotSupported{}
		f.FaultMessage = []types.LocalizableMessage{{
			Key:     "msg.pciPassthru.suspend",
			Message: "Suspend is not supported for a virtual machine with PCI passthrough devices",
		}}
		return &methods.SuspendVM_TaskBody{Res: &types.SuspendVM_TaskResponse{
			Returnval: failedTask(ctx, vm.VirtualMachine, "suspend", f),
		}}
	}
	res := vm.VirtualMachine.SuspendVMTask(ctx, req)
	if body, ok := res.(*methods.SuspendVM_TaskBody); ok && body.Res != nil {
		_ = waitTask(ctx, body.Res.Returnval)
		refreshGen2(ctx, vm.VirtualMachine)
	}
	return res
}

// passthroughDatacenter wraps a Datacenter so PowerOnMultiVM_Task applies the same power-on
// rules as PowerOnVM_Task; the upstream one calls the simulator's VM method directly.
type passthroughDatacenter struct {
	*simulator.Datacenter
}

func init() {
	OverrideOf(func(ctx *simulator.Context, dc *simulator.Datacenter) mo.Reference {
		if ctx.Map.IsVPX() {
			return &passthroughDatacenter{dc}
		}
		return nil
	}, "PowerOnMultiVM_Task")
}

// PowerOnMultiVMTask powers on each VM like PowerOnVM_Task. As on vCenter, a VM whose rules
// fail is listed in notAttempted with the fault; the others in attempted with their task.
func (dc *passthroughDatacenter) PowerOnMultiVMTask(ctx *simulator.Context, req *types.PowerOnMultiVM_Task) soap.HasFault {
	task := simulator.CreateTask(dc.Datacenter, "powerOnMultiVM", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		res := types.ClusterPowerOnVmResult{Attempted: []types.ClusterAttemptedVmInfo{}}
		for _, ref := range req.Vm {
			vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
			if !ok {
				continue
			}
			// One context per VM power-on, as upstream does: a context belongs to one task.
			vmCtx := &simulator.Context{Context: ctx.Context, Session: ctx.Session, Map: ctx.Map}
			vmCtx.WithLock(vm, func() {
				r, fault := powerOnVM(vmCtx, vm, &types.PowerOnVM_Task{This: ref})
				if body, ok := r.(*methods.PowerOnVM_TaskBody); fault == nil && ok && body.Res != nil {
					t := body.Res.Returnval
					res.Attempted = append(res.Attempted, types.ClusterAttemptedVmInfo{Vm: ref, Task: &t})
					return
				}
				if fault == nil {
					fault = new(types.InvalidState) // e.g. a template
				}
				res.NotAttempted = append(res.NotAttempted, types.ClusterNotAttemptedVmInfo{
					Vm:    ref,
					Fault: types.LocalizedMethodFault{Fault: fault, LocalizedMessage: faultMessage(fault)},
				})
			})
		}
		return res, nil
	})
	return &methods.PowerOnMultiVM_TaskBody{Res: &types.PowerOnMultiVM_TaskResponse{Returnval: task.Run(ctx)}}
}

// faultMessage is the text of a fault for localizedMessage fields: its faultMessage texts, one a
// line (a power-on failure says which module failed, then why).
func faultMessage(f types.BaseMethodFault) string {
	var lines []string
	for _, m := range f.GetMethodFault().FaultMessage {
		if m.Message != "" {
			lines = append(lines, m.Message)
		}
	}
	return strings.Join(lines, "\n")
}
