package sim

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// ReconfigVMTask applies the passthrough rules of ReconfigVM_Task, then lets the upstream
// simulator do the reconfigure. The upstream one already stores VirtualPCIPassthrough devices
// with either backing as given and turns non-positive keys into free ones; what it lacks is
// added here:
//   - changeVersion is honoured (ConcurrentAccess on a stale one);
//   - a PCI passthrough device is added, edited or removed only on a powered-off VM;
//   - the per-VM passthrough device limit of the host's version;
//   - passthrough devices get keys from 13000 up, as vSphere numbers them, and a slot on the
//     PCI controller (settlePassthroughDevices);
//   - memoryReservationLockedToMax pins the reservation to memoryMB, and a partial
//     memoryAllocation is merged instead of replacing the whole allocation;
//   - property notifications for the config fields the upstream one changes silently;
//   - a Dynamic DirectPath device needs virtual hardware 17 (DeviceUnsupportedForVmVersion);
//   - spec.version is ignored and an empty extraConfig value only removes (normalizeSpec).
//
// Nested HV together with a passthrough device is accepted here and refused at power-on,
// because that is where ESXi checks it (see checkPowerOn).
func (vm *passthroughVM) ReconfigVMTask(ctx *simulator.Context, req *types.ReconfigVM_Task) soap.HasFault {
	if fault := vm.checkReconfig(ctx, &req.Spec); fault != nil {
		return &methods.ReconfigVM_TaskBody{Res: &types.ReconfigVM_TaskResponse{
			Returnval: failedTask(ctx, vm.VirtualMachine, "reconfigVm", fault),
		}}
	}
	vm.normalizeSpec(&req.Spec)
	vm.assignPassthroughKeys(&req.Spec)
	vm.mergeMemoryAllocation(&req.Spec)

	res := vm.VirtualMachine.ReconfigVMTask(ctx, req)
	body, ok := res.(*methods.ReconfigVM_TaskBody)
	if !ok || body.Res == nil {
		return res
	}
	if waitTask(ctx, body.Res.Returnval) == nil {
		vm.notifyConfig(ctx, &req.Spec)
		settlePassthroughDevices(ctx, vm.VirtualMachine)
		refreshGen2(ctx, vm.VirtualMachine)
	}
	return res
}

// checkReconfig returns the fault vCenter would give for spec, or nil.
func (vm *passthroughVM) checkReconfig(ctx *simulator.Context, spec *types.VirtualMachineConfigSpec) types.BaseMethodFault {
	// vSphere API reference, VirtualMachineConfigSpec.changeVersion: a reconfigure carrying a
	// changeVersion other than the current config.changeVersion fails with ConcurrentAccess.
	if spec.ChangeVersion != "" && spec.ChangeVersion != vm.Config.ChangeVersion {
		f := &types.ConcurrentAccess{}
		f.FaultMessage = []types.LocalizableMessage{{
			Key: "com.vmware.vim.vpxd.vmcheck.changeVersion",
			Message: fmt.Sprintf("The operation is not allowed in the current state: config changed "+
				"(changeVersion %s, expected %s)", vm.Config.ChangeVersion, spec.ChangeVersion),
		}}
		return f
	}

	current := pciPassthroughDevices(vm.Config.Hardware.Device)
	count := len(current)
	touched := false
	for i, change := range spec.DeviceChange {
		dspec := change.GetVirtualDeviceConfigSpec()
		if dspec.Device == nil {
			continue
		}
		key := dspec.Device.GetVirtualDevice().Key
		_, isNew := dspec.Device.(*types.VirtualPCIPassthrough)
		wasPT := false
		for _, d := range current {
			if d.Key == key {
				wasPT = true
			}
		}
		switch dspec.Operation {
		case types.VirtualDeviceConfigSpecOperationAdd:
			if !isNew {
				continue
			}
			count++
		case types.VirtualDeviceConfigSpecOperationRemove:
			if !wasPT {
				continue
			}
			count--
		case types.VirtualDeviceConfigSpecOperationEdit:
			if !wasPT && !isNew {
				continue
			}
		}
		touched = true
		if isNew && dspec.Operation != types.VirtualDeviceConfigSpecOperationRemove {
			d := dspec.Device.(*types.VirtualPCIPassthrough)
			if fault := checkBacking(d, int32(i)); fault != nil {
				return fault
			}
			if fault := checkDynamicVersion(vm.VirtualMachine, d, int32(i)); fault != nil {
				return fault
			}
		}
	}
	if !touched {
		return nil
	}

	// vSphere docs, "Add a PCI Device to a Virtual Machine": PCI passthrough
	// devices are added and removed only while the VM is powered off.
	if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
		return &types.InvalidPowerState{
			RequestedState: types.VirtualMachinePowerStatePoweredOff,
			ExistingState:  vm.Runtime.PowerState,
		}
	}

	// vSphere configuration maximums; KB 309986: passthrough devices per VM.
	if limit := pciPassthroughLimit(hostVersion(vmHost(ctx, vm.VirtualMachine))); int32(count) > limit {
		f := &types.TooManyDevices{}
		f.FaultMessage = []types.LocalizableMessage{{
			Key:     "msg.pciPassthru.tooMany",
			Message: fmt.Sprintf("A virtual machine can have at most %d PCI passthrough devices on this host; the change would give it %d", limit, count),
		}}
		return f
	}
	return nil
}

// checkBacking rejects a passthrough device without one of the two DirectPath backings. The
// values in a backing are checked at power-on, where ESXi checks them (govmomi #2248/#2249).
func checkBacking(d *types.VirtualPCIPassthrough, index int32) types.BaseMethodFault {
	switch b := d.Backing.(type) {
	case *types.VirtualPCIPassthroughDeviceBackingInfo:
		if b.Id != "" {
			return nil
		}
	case *types.VirtualPCIPassthroughDynamicBackingInfo:
		if len(b.AllowedDevice) != 0 {
			return nil
		}
	}
	return &types.InvalidDeviceBacking{InvalidDeviceSpec: types.InvalidDeviceSpec{DeviceIndex: index}}
}

// dynamicPassthroughMinVersion: Dynamic DirectPath I/O came with vSphere 7.0 and needs virtual
// hardware version 17 or later (vSphere 7.0 docs, "Add a PCI Device to a Virtual Machine";
// cloudfoundry/bosh-vsphere-cpi-release PR #370 upgrades the hardware version for it).
const dynamicPassthroughMinVersion = types.VMX17

// checkDynamicVersion refuses a Dynamic DirectPath device on a VM below that version with the
// fault vSphere uses for a device the hardware version doesn't support.
func checkDynamicVersion(vm *simulator.VirtualMachine, d *types.VirtualPCIPassthrough, index int32) types.BaseMethodFault {
	if _, ok := d.Backing.(*types.VirtualPCIPassthroughDynamicBackingInfo); !ok {
		return nil
	}
	current, err := types.ParseHardwareVersion(vm.Config.Version)
	if err == nil && current >= dynamicPassthroughMinVersion {
		return nil
	}
	f := &types.DeviceUnsupportedForVmVersion{
		InvalidDeviceSpec: types.InvalidDeviceSpec{DeviceIndex: index},
		CurrentVersion:    vm.Config.Version,
		ExpectedVersion:   dynamicPassthroughMinVersion.String(),
	}
	f.FaultMessage = []types.LocalizableMessage{{
		Key: "msg.pciPassthru.dynamic.hwVersion",
		Message: fmt.Sprintf("Dynamic DirectPath I/O devices need virtual hardware version %s or later; the virtual machine has %s",
			dynamicPassthroughMinVersion, vm.Config.Version),
	}}
	return f
}

// normalizeSpec makes the upstream reconfigure do what vSphere does with two fields:
//   - version is only used when a VM is created; UpgradeVM_Task changes it (vSphere API
//     reference, VirtualMachineConfigSpec.version). Upstream would apply it here.
//   - extraConfig values are stored as strings, and a key set to "" is removed (vSphere API
//     reference, VirtualMachineConfigSpec.extraConfig). Upstream removes an existing key but
//     would add a missing one with an empty value; such entries are dropped here. An unset
//     value counts as "".
func (vm *passthroughVM) normalizeSpec(spec *types.VirtualMachineConfigSpec) {
	spec.Version = ""
	var options []types.BaseOptionValue
	for _, o := range spec.ExtraConfig {
		ov := o.GetOptionValue()
		if ov == nil {
			continue
		}
		value := ""
		if ov.Value != nil {
			value = fmt.Sprint(ov.Value)
		}
		if _, exists := extraConfigValue(vm.VirtualMachine, ov.Key); value == "" && !exists {
			continue
		}
		options = append(options, &types.OptionValue{Key: ov.Key, Value: value})
	}
	spec.ExtraConfig = options
}

// assignPassthroughKeys gives every added passthrough device with a temporary (non-positive)
// key the next free key from 13000, and the label vSphere shows ("PCI device 0").
func (vm *passthroughVM) assignPassthroughKeys(spec *types.VirtualMachineConfigSpec) {
	used := map[int32]bool{}
	for _, d := range vm.Config.Hardware.Device {
		used[d.GetVirtualDevice().Key] = true
	}
	for _, change := range spec.DeviceChange {
		if d := change.GetVirtualDeviceConfigSpec().Device; d != nil {
			used[d.GetVirtualDevice().Key] = true
		}
	}
	var pciController int32
	for _, d := range vm.Config.Hardware.Device {
		if c, ok := d.(*types.VirtualPCIController); ok {
			pciController = c.Key
		}
	}
	index := len(pciPassthroughDevices(vm.Config.Hardware.Device))
	for _, change := range spec.DeviceChange {
		dspec := change.GetVirtualDeviceConfigSpec()
		pt, ok := dspec.Device.(*types.VirtualPCIPassthrough)
		if !ok || dspec.Operation != types.VirtualDeviceConfigSpecOperationAdd {
			continue
		}
		if pt.Key <= 0 {
			key := int32(pciPassthroughKeyBase)
			for used[key] {
				key++
			}
			used[key] = true
			pt.Key = key
		}
		if pt.ControllerKey == 0 {
			pt.ControllerKey = pciController
		}
		if pt.DeviceInfo == nil {
			summary := "Dynamic DirectPath I/O"
			if b, ok := pt.Backing.(*types.VirtualPCIPassthroughDeviceBackingInfo); ok {
				summary = b.Id
			}
			pt.DeviceInfo = &types.Description{Label: fmt.Sprintf("PCI device %d", index), Summary: summary}
		}
		index++
	}
}

// mergeMemoryAllocation makes spec.memoryAllocation a complete allocation: the upstream
// simulator replaces config.memoryAllocation with the spec's, so a spec carrying only a
// reservation would drop the limit and shares. With memoryReservationLockedToMax (set in this
// spec or already on the VM) the reservation follows memoryMB, as on vSphere.
func (vm *passthroughVM) mergeMemoryAllocation(spec *types.VirtualMachineConfigSpec) {
	locked := vm.Config.MemoryReservationLockedToMax
	if spec.MemoryReservationLockedToMax != nil {
		locked = spec.MemoryReservationLockedToMax
	}
	isLocked := locked != nil && *locked
	if spec.MemoryAllocation == nil && !isLocked {
		return
	}
	merged := types.ResourceAllocationInfo{}
	if cur := vm.Config.MemoryAllocation; cur != nil {
		merged = *cur
	}
	if s := spec.MemoryAllocation; s != nil {
		if s.Reservation != nil {
			merged.Reservation = s.Reservation
		}
		if s.Limit != nil {
			merged.Limit = s.Limit
		}
		if s.Shares != nil {
			merged.Shares = s.Shares
		}
		if s.ExpandableReservation != nil {
			merged.ExpandableReservation = s.ExpandableReservation
		}
	}
	if isLocked {
		memMB := int64(vm.Config.Hardware.MemoryMB)
		if spec.MemoryMB != 0 {
			memMB = spec.MemoryMB
		}
		merged.Reservation = types.NewInt64(memMB)
	}
	spec.MemoryAllocation = &merged
}

// notifyConfig reports the config fields a successful reconfigure changed. The upstream
// simulator writes them in place and only notifies config.changeVersion, config.modified and
// config.hardware.device, so WaitForUpdatesEx watchers would miss the rest.
func (vm *passthroughVM) notifyConfig(ctx *simulator.Context, spec *types.VirtualMachineConfigSpec) {
	cfg := vm.Config
	var changes []types.PropertyChange
	add := func(name string, val any) {
		changes = append(changes, types.PropertyChange{Name: name, Op: types.PropertyChangeOpAssign, Val: val})
	}
	if spec.MemoryAllocation != nil && cfg.MemoryAllocation != nil {
		add("config.memoryAllocation", *cfg.MemoryAllocation)
		if r := cfg.MemoryAllocation.Reservation; r != nil {
			add("config.memoryAllocation.reservation", *r)
			add("summary.config.memoryReservation", int32(*r))
		}
	}
	bools := []struct {
		set  *bool
		name string
		val  *bool
	}{
		{spec.MemoryReservationLockedToMax, "config.memoryReservationLockedToMax", cfg.MemoryReservationLockedToMax},
		{spec.NestedHVEnabled, "config.nestedHVEnabled", cfg.NestedHVEnabled},
		{spec.CpuHotAddEnabled, "config.cpuHotAddEnabled", cfg.CpuHotAddEnabled},
		{spec.CpuHotRemoveEnabled, "config.cpuHotRemoveEnabled", cfg.CpuHotRemoveEnabled},
		{spec.MemoryHotAddEnabled, "config.memoryHotAddEnabled", cfg.MemoryHotAddEnabled},
	}
	for _, b := range bools {
		if b.set != nil && b.val != nil {
			add(b.name, *b.val)
		}
	}
	if spec.Firmware != "" {
		add("config.firmware", cfg.Firmware)
	}
	if spec.MemoryMB != 0 {
		add("config.hardware.memoryMB", cfg.Hardware.MemoryMB)
		add("summary.config.memorySizeMB", cfg.Hardware.MemoryMB)
	}
	if spec.NumCPUs != 0 {
		add("config.hardware.numCPU", cfg.Hardware.NumCPU)
		add("summary.config.numCpu", cfg.Hardware.NumCPU)
	}
	if len(changes) != 0 {
		ctx.Update(vm.VirtualMachine, changes)
	}
}
