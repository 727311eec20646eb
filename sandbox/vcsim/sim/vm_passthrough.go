package sim

import (
	"fmt"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// This file holds the read-only helpers the VM-side passthrough rules share: which devices of a
// VM are DirectPath I/O devices, what its host offers, and who holds a host device. The rules
// themselves live in vm_reconfig.go, vm_power.go, vm_snapshot.go, configtarget.go and gen2.go.

// pciPassthroughKeyBase is where vSphere numbers PCI passthrough devices (the first one added to
// a VM gets key 13000), so keys the sandbox hands out look like the ones the operator will see.
const pciPassthroughKeyBase = 13000

// pciPassthroughDevices returns the DirectPath I/O devices (any backing) in a device list.
func pciPassthroughDevices(devices []types.BaseVirtualDevice) []*types.VirtualPCIPassthrough {
	var out []*types.VirtualPCIPassthrough
	for _, d := range devices {
		if p, ok := d.(*types.VirtualPCIPassthrough); ok {
			out = append(out, p)
		}
	}
	return out
}

// hasPCIPassthrough says whether a VM has at least one DirectPath I/O device.
func hasPCIPassthrough(vm *simulator.VirtualMachine) bool {
	return vm.Config != nil && len(pciPassthroughDevices(vm.Config.Hardware.Device)) != 0
}

// vmHost returns the host a VM is registered on, or nil.
func vmHost(ctx *simulator.Context, vm *simulator.VirtualMachine) *simulator.HostSystem {
	if vm.Runtime.Host == nil {
		return nil
	}
	h, _ := ctx.Map.Get(*vm.Runtime.Host).(*simulator.HostSystem)
	return h
}

// hostPassthruInfo returns the host's config.pciPassthruInfo entries (SR-IOV entries included,
// through the HostPciPassthruInfo they embed).
func hostPassthruInfo(h *simulator.HostSystem) []*types.HostPciPassthruInfo {
	if h == nil || h.Config == nil {
		return nil
	}
	out := make([]*types.HostPciPassthruInfo, 0, len(h.Config.PciPassthruInfo))
	for _, b := range h.Config.PciPassthruInfo {
		if b != nil {
			out = append(out, b.GetHostPciPassthruInfo())
		}
	}
	return out
}

// hostPassthruByID finds one device's passthrough state on a host.
func hostPassthruByID(h *simulator.HostSystem, id string) *types.HostPciPassthruInfo {
	for _, info := range hostPassthruInfo(h) {
		if info.Id == id {
			return info
		}
	}
	return nil
}

// hostPciDevice finds a device in the host's hardware.pciDevice by its PCI address.
func hostPciDevice(h *simulator.HostSystem, id string) *types.HostPciDevice {
	if h == nil || h.Hardware == nil {
		return nil
	}
	for i := range h.Hardware.PciDevice {
		if h.Hardware.PciDevice[i].Id == id {
			return &h.Hardware.PciDevice[i]
		}
	}
	return nil
}

// hostSystemID is the value vSphere puts in VirtualMachinePciPassthroughInfo.systemId and expects
// back in a static backing's systemId. The sandbox uses the host's hardware.systemInfo.uuid.
func hostSystemID(h *simulator.HostSystem) string {
	if h == nil || h.Hardware == nil {
		return ""
	}
	return h.Hardware.SystemInfo.Uuid
}

// pciIDHex renders a vendor or device id the way a static backing's deviceId must carry it:
// lower-case hex of the unsigned 16-bit value. HostPciDevice ids are signed int16 on the wire, so
// ids above 0x7fff arrive negative and are masked (WSDL; govmomi #2248).
func pciIDHex(id int16) string {
	return fmt.Sprintf("%x", uint16(id))
}

// pciIDMatches compares an AllowedDevice id (int32) with a HostPciDevice id (int16) on their
// unsigned 16-bit values, so 0x10de == 4318 and 0x8086 == -32634 both match.
func pciIDMatches(allowed int32, host int16) bool {
	return uint16(allowed) == uint16(host)
}

// heldDeviceID returns the host PCI address a passthrough device uses: the static backing's id,
// or for Dynamic DirectPath the assignedId chosen at power-on (empty while powered off).
func heldDeviceID(d *types.VirtualPCIPassthrough) string {
	switch b := d.Backing.(type) {
	case *types.VirtualPCIPassthroughDeviceBackingInfo:
		return b.Id
	case *types.VirtualPCIPassthroughDynamicBackingInfo:
		return b.AssignedId
	}
	return ""
}

// deviceHolders maps each host PCI address held by a powered-on VM on host (other than except)
// to that VM. A device is held from power-on to power-off.
func deviceHolders(ctx *simulator.Context, host *simulator.HostSystem, except *simulator.VirtualMachine) map[string]*simulator.VirtualMachine {
	held := map[string]*simulator.VirtualMachine{}
	if host == nil {
		return held
	}
	for _, ref := range host.Vm {
		other, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
		if !ok || other == except || other.Config == nil {
			continue
		}
		if other.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			continue
		}
		for _, d := range pciPassthroughDevices(other.Config.Hardware.Device) {
			if id := heldDeviceID(d); id != "" {
				held[id] = other
			}
		}
	}
	return held
}

// vmConfigFault is how the sandbox reports a VM configuration rejected by the host (the VMX):
// a GenericVmConfigFault whose reason and faultMessage carry vSphere's text.
func vmConfigFault(key, format string, args ...any) *types.GenericVmConfigFault {
	msg := fmt.Sprintf(format, args...)
	f := &types.GenericVmConfigFault{Reason: msg}
	f.FaultMessage = []types.LocalizableMessage{{Key: key, Message: msg}}
	return f
}

// deviceLabel is the label vSphere gives the n-th PCI passthrough device ("PCI device 0").
func deviceLabel(d types.BaseVirtualDevice) string {
	if info := d.GetVirtualDevice().DeviceInfo; info != nil {
		if l := info.GetDescription().Label; l != "" {
			return l
		}
	}
	return fmt.Sprintf("device %d", d.GetVirtualDevice().Key)
}

// hostName is a host's inventory name, for messages.
func hostName(h *simulator.HostSystem) string {
	if h == nil {
		return "(no host)"
	}
	return h.Name
}

// lowerHex reports whether s is already lower-case hex (no prefix).
func lowerHex(s string) bool {
	return s != "" && strings.Trim(s, "0123456789abcdef") == ""
}
