package sim

import (
	"slices"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// pciPassthroughFirstUnit is the first PCI slot (unitNumber on the VM's PCI controller) given to
// a passthrough device: slots 0–17 hold the video card, the VMCI device (17) and NICs (from 7).
const pciPassthroughFirstUnit = 18

// settlePassthroughDevices puts every PCI passthrough device of a VM where vCenter has it: on
// the VM's PCI controller (controllerKey, usually 100) with a unitNumber of its own, listed in
// the controller's device[], and a static backing's deviceName filled from the host's PCI
// device (HostPciDevice.deviceName). Upstream (virtual_machine.go, configureDevice) assigns a
// controller and unit only to NICs and disks, so a passthrough device came without either, and
// the controller's device[] missed it. Controller entries of devices that are gone are dropped.
// Idempotent; a change is notified on config.hardware.device. The caller holds the VM's lock.
func settlePassthroughDevices(ctx *simulator.Context, vm *simulator.VirtualMachine) {
	if vm.Config == nil {
		return
	}
	devices := vm.Config.Hardware.Device
	var pci *types.VirtualPCIController
	present := map[int32]bool{}
	for _, d := range devices {
		present[d.GetVirtualDevice().Key] = true
		if c, ok := d.(*types.VirtualPCIController); ok && pci == nil {
			pci = c
		}
	}
	if pci == nil {
		return
	}
	host := vmHost(ctx, vm)
	changed := false
	kept := pci.Device[:0:0]
	for _, k := range pci.Device {
		if present[k] {
			kept = append(kept, k)
		}
	}
	if len(kept) != len(pci.Device) {
		pci.Device, changed = kept, true
	}
	for _, d := range pciPassthroughDevices(devices) {
		if d.ControllerKey == 0 {
			d.ControllerKey, changed = pci.Key, true
		}
		if d.ControllerKey == pci.Key {
			if d.UnitNumber == nil {
				d.UnitNumber, changed = types.NewInt32(freeUnit(devices, pci.Key)), true
			}
			if !slices.Contains(pci.Device, d.Key) {
				pci.Device, changed = append(pci.Device, d.Key), true
			}
		}
		if b, ok := d.Backing.(*types.VirtualPCIPassthroughDeviceBackingInfo); ok && b.DeviceName == "" && host != nil {
			if hd := hostPciDevice(host, b.Id); hd != nil && hd.DeviceName != "" {
				b.DeviceName, changed = hd.DeviceName, true
			}
		}
	}
	if changed {
		ctx.Update(vm, []types.PropertyChange{{Name: "config.hardware.device", Val: devices}})
	}
}

// freeUnit is the first unitNumber from pciPassthroughFirstUnit not taken on the controller.
func freeUnit(devices []types.BaseVirtualDevice, controller int32) int32 {
	used := map[int32]bool{}
	for _, d := range devices {
		v := d.GetVirtualDevice()
		if v.ControllerKey == controller && v.UnitNumber != nil {
			used[*v.UnitNumber] = true
		}
	}
	u := int32(pciPassthroughFirstUnit)
	for used[u] {
		u++
	}
	return u
}
