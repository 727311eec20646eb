package sim

import (
	"reflect"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// VMDirectPath Gen2 (VM-FEX): a vmxnet3 adapter with uptCompatibilityEnabled on a distributed
// port group that allows Gen2, on a host with capability.vmDirectPathGen2Supported, runs in
// passthrough mode while the VM is powered on, and vMotion stays available.
// Source: vSphere API reference — HostCapability.vmDirectPathGen2Supported,
// DVPortSetting.vmDirectPathGen2Allowed, VirtualEthernetCard.uptCompatibilityEnabled,
// VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeState (vmDirectPathGen2Active and
// its inactive reasons); docs/design.md, "VM side: DirectPath Gen2 and vMotion". Deprecated in
// API 8.0.

type (
	gen2ReasonVm    = types.VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeStateVmDirectPathGen2InactiveReasonVm
	gen2ReasonOther = types.VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeStateVmDirectPathGen2InactiveReasonOther
)

const (
	gen2AdapterType      = gen2ReasonVm("vmNptIncompatibleAdapterType")
	gen2Disconnected     = gen2ReasonVm("vmNptDisabledOrDisconnectedAdapter")
	gen2BackingType      = gen2ReasonVm("vmNptIncompatibleBackingType")
	gen2MemReservation   = gen2ReasonVm("vmNptInsufficientMemoryReservation")
	gen2FaultTolerance   = gen2ReasonVm("vmNptFaultToleranceOrRecordReplayConfigured")
	gen2MonitorBlocks    = gen2ReasonVm("vmNptMonitorBlocks")
	gen2IncompatibleHost = gen2ReasonOther("vmNptIncompatibleHost")
	gen2IncompatibleNet  = gen2ReasonOther("vmNptIncompatibleNetwork")
)

// gen2Runtime computes runtime.device for a VM: one VirtualEthernetCardRuntimeState per
// ethernet adapter while the VM is powered on, none otherwise.
func gen2Runtime(ctx *simulator.Context, vm *simulator.VirtualMachine) []types.VirtualMachineDeviceRuntimeInfo {
	if vm.Config == nil || vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		return nil
	}
	host := vmHost(ctx, vm)
	var out []types.VirtualMachineDeviceRuntimeInfo
	for _, d := range vm.Config.Hardware.Device {
		nic, ok := d.(types.BaseVirtualEthernetCard)
		if !ok {
			continue
		}
		state := gen2State(ctx, vm, host, d, nic.GetVirtualEthernetCard())
		out = append(out, types.VirtualMachineDeviceRuntimeInfo{
			Key:          d.GetVirtualDevice().Key,
			RuntimeState: state,
		})
	}
	return out
}

func gen2State(ctx *simulator.Context, vm *simulator.VirtualMachine, host *simulator.HostSystem,
	device types.BaseVirtualDevice, card *types.VirtualEthernetCard) *types.VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeState {
	var reasonsVm, reasonsOther []string
	extended := ""
	vmReason := func(r gen2ReasonVm) { reasonsVm = append(reasonsVm, string(r)) }

	if _, ok := device.(*types.VirtualVmxnet3); !ok {
		vmReason(gen2AdapterType)
	}
	if card.UptCompatibilityEnabled == nil || !*card.UptCompatibilityEnabled {
		extended = "uptCompatibilityEnabled is not set on the adapter"
	}
	if c := card.Connectable; c != nil && !c.Connected {
		vmReason(gen2Disconnected)
	}
	if !fullMemoryReservation(vm) {
		vmReason(gen2MemReservation)
	}
	if vm.Config.FtInfo != nil {
		vmReason(gen2FaultTolerance)
	}
	if hasPCIPassthrough(vm) {
		// A DirectPath I/O device pins the VM to its host, so Gen2 can't be active.
		vmReason(gen2MonitorBlocks)
		if extended == "" {
			extended = "the virtual machine has a PCI passthrough device"
		}
	}

	if host == nil || host.Capability == nil || host.Capability.VmDirectPathGen2Supported == nil ||
		!*host.Capability.VmDirectPathGen2Supported {
		reasonsOther = append(reasonsOther, string(gen2IncompatibleHost))
	}
	backing, ok := card.Backing.(*types.VirtualEthernetCardDistributedVirtualPortBackingInfo)
	if !ok {
		vmReason(gen2BackingType)
	} else if !portgroupAllowsGen2(ctx, backing.Port.PortgroupKey) {
		reasonsOther = append(reasonsOther, string(gen2IncompatibleNet))
	}

	active := len(reasonsVm) == 0 && len(reasonsOther) == 0 && extended == ""
	return &types.VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeState{
		VmDirectPathGen2Active:                 types.NewBool(active),
		VmDirectPathGen2InactiveReasonVm:       reasonsVm,
		VmDirectPathGen2InactiveReasonOther:    reasonsOther,
		VmDirectPathGen2InactiveReasonExtended: extended,
	}
}

// portgroupAllowsGen2 reads config.defaultPortConfig.vmDirectPathGen2Allowed of a distributed
// port group (the simulator names port groups by their key).
func portgroupAllowsGen2(ctx *simulator.Context, key string) bool {
	pg, ok := ctx.Map.Get(types.ManagedObjectReference{Type: "DistributedVirtualPortgroup", Value: key}).(*simulator.DistributedVirtualPortgroup)
	if !ok {
		for _, e := range ctx.Map.All("DistributedVirtualPortgroup") {
			if p, ok := e.(*simulator.DistributedVirtualPortgroup); ok && p.Key == key {
				pg = p
				break
			}
		}
	}
	if pg == nil || pg.Config.DefaultPortConfig == nil {
		return false
	}
	allowed := pg.Config.DefaultPortConfig.GetDVPortSetting().VmDirectPathGen2Allowed
	return allowed != nil && allowed.Value != nil && *allowed.Value
}

// fullMemoryReservation says whether the VM reserves all its memory, as DirectPath I/O and
// Gen2 need: memoryReservationLockedToMax, or a reservation of at least memoryMB.
func fullMemoryReservation(vm *simulator.VirtualMachine) bool {
	if l := vm.Config.MemoryReservationLockedToMax; l != nil && *l {
		return true
	}
	a := vm.Config.MemoryAllocation
	return a != nil && a.Reservation != nil && *a.Reservation >= int64(vm.Config.Hardware.MemoryMB)
}

// refreshGen2 recomputes runtime.device and notifies watchers when it changed, then brings
// summary.runtime in line with runtime (syncRuntime). It is called after power on/off, suspend,
// reconfigure, a host reboot's power-off and a maintenance-mode migration; the caller holds
// the VM's lock.
func refreshGen2(ctx *simulator.Context, vm *simulator.VirtualMachine) {
	next := gen2Runtime(ctx, vm)
	if !reflect.DeepEqual(next, vm.Runtime.Device) {
		ctx.Update(vm, []types.PropertyChange{
			{Name: "runtime.device", Op: types.PropertyChangeOpAssign, Val: next},
		})
	}
	syncRuntime(ctx, vm)
}
