package sim

import (
	"fmt"
	"slices"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
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

// creatingFolder places the passthrough devices of a VM made by CreateVM_Task as vCenter does:
// upstream (folder.go createVM → virtual_machine.go configureDevice) keys a new device from 200
// and labels it "pcipassthrough-<key>". Devices with a temporary key (≤ 0) get keys from 13000
// and "PCI device n" before the upstream creates the VM, and settlePassthroughDevices runs once
// it exists.
type creatingFolder struct {
	*simulator.Folder
}

func init() {
	OverrideOf(func(_ *simulator.Context, f *simulator.Folder) mo.Reference {
		return &creatingFolder{f}
	}, "CreateVM_Task")
}

func (f *creatingFolder) CreateVMTask(ctx *simulator.Context, req *types.CreateVM_Task) soap.HasFault {
	keyNewPassthrough(&req.Config)
	res := f.Folder.CreateVMTask(ctx, req)
	body, ok := res.(*methods.CreateVM_TaskBody)
	if !ok || body.Res == nil || waitTask(ctx, body.Res.Returnval) != nil {
		return res
	}
	task, ok := ctx.Map.Get(body.Res.Returnval).(*simulator.Task)
	if !ok {
		return res
	}
	var ref types.ManagedObjectReference
	ctx.Map.WithLock(ctx, task, func() { ref, _ = task.Info.Result.(types.ManagedObjectReference) })
	if vm, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine); ok {
		ctx.Map.WithLock(ctx, vm, func() { settlePassthroughDevices(ctx, vm) })
	}
	return res
}

// keyNewPassthrough gives the passthrough devices of a create spec that carry a temporary key
// the key and label vCenter gives them.
func keyNewPassthrough(spec *types.VirtualMachineConfigSpec) {
	used := map[int32]bool{}
	for _, change := range spec.DeviceChange {
		if d := change.GetVirtualDeviceConfigSpec().Device; d != nil {
			used[d.GetVirtualDevice().Key] = true
		}
	}
	n := 0
	for _, change := range spec.DeviceChange {
		pt, ok := change.GetVirtualDeviceConfigSpec().Device.(*types.VirtualPCIPassthrough)
		if !ok {
			continue
		}
		if pt.Key <= 0 {
			key := int32(pciPassthroughKeyBase)
			for used[key] {
				key++
			}
			used[key] = true
			pt.Key = key
			if pt.DeviceInfo == nil {
				summary := "Dynamic DirectPath I/O"
				if b, ok := pt.Backing.(*types.VirtualPCIPassthroughDeviceBackingInfo); ok {
					summary = b.Id
				}
				pt.DeviceInfo = &types.Description{Label: fmt.Sprintf("PCI device %d", n), Summary: summary}
			}
		}
		n++
	}
}
