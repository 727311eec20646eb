package sim

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// checkPassthroughPlacement checks what vCenter shows for a VM's passthrough devices: keys from
// 13000, unique, labels "PCI device N", on the PCI controller with a unitNumber of their own and
// in its device[], a static backing's deviceName the host device's name.
func checkPassthroughPlacement(t *testing.T, name string, devices object.VirtualDeviceList, hostDevices []types.HostPciDevice) int {
	t.Helper()
	pci, ok := devices.PickController((*types.VirtualPCIController)(nil)).(*types.VirtualPCIController)
	if !ok {
		t.Fatalf("%s: no PCI controller", name)
	}
	units := map[int32]string{}
	for _, d := range devices {
		v := d.GetVirtualDevice()
		if v.ControllerKey == pci.Key && v.UnitNumber != nil {
			if other, dup := units[*v.UnitNumber]; dup {
				t.Errorf("%s: unit %d of %s taken by %s", name, *v.UnitNumber, devices.Name(d), other)
			}
			units[*v.UnitNumber] = devices.Name(d)
		}
	}
	n := 0
	for i, d := range pciPassthroughDevices(devices) {
		n++
		if d.Key != int32(pciPassthroughKeyBase+i) {
			t.Errorf("%s: device %d key %d, want %d", name, i, d.Key, pciPassthroughKeyBase+i)
		}
		if label := deviceLabel(d); label != fmt.Sprintf("PCI device %d", i) {
			t.Errorf("%s: key %d label %q", name, d.Key, label)
		}
		if d.ControllerKey != pci.Key || d.UnitNumber == nil {
			t.Errorf("%s: key %d controller %d unit %v, want controller %d with a unit", name, d.Key, d.ControllerKey, d.UnitNumber, pci.Key)
		}
		if !slices.Contains(pci.Device, d.Key) {
			t.Errorf("%s: PCI controller device[] %v lacks %d", name, pci.Device, d.Key)
		}
		if b, ok := d.Backing.(*types.VirtualPCIPassthroughDeviceBackingInfo); ok {
			for _, hd := range hostDevices {
				if hd.Id == b.Id && b.DeviceName != hd.DeviceName {
					t.Errorf("%s: key %d deviceName %q, want %q", name, d.Key, b.DeviceName, hd.DeviceName)
				}
			}
		}
	}
	return n
}

// Inventory passthrough devices and ones added by ReconfigVM_Task sit where vCenter puts them.
func TestPassthroughDevicePlacement(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	count := 0
	for _, ref := range s.Map.All("VirtualMachine") {
		vm := ref.(*simVM)
		var o mo.VirtualMachine
		if err := object.NewVirtualMachine(c, vm.Self).Properties(ctx, vm.Self, []string{"config.hardware.device"}, &o); err != nil {
			t.Fatal(err)
		}
		count += checkPassthroughPlacement(t, vm.Name, o.Config.Hardware.Device, s.Map.Get(*vm.Runtime.Host).(*simHost).Hardware.PciDevice)
	}
	if count == 0 {
		t.Fatalf("no passthrough device in the inventory (%d)", count)
	}

	// A VM created with passthrough devices (temporary keys) by a client.
	ref := s.vmByName("ml-trainer-01")
	hostSim := s.Map.Get(*ref.Runtime.Host).(*simHost)
	pci := hostSim.Hardware.PciDevice[0]
	static := &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{Key: -1, Backing: &types.VirtualPCIPassthroughDeviceBackingInfo{
		Id: pci.Id, DeviceId: pciIDHex(pci.DeviceId), SystemId: hostSim.Hardware.SystemInfo.Uuid, VendorId: pci.VendorId,
	}}}
	spec := addDevices(static, dynamicDevice(0x10de, 0x20b5, "a100"))
	spec.Name, spec.GuestId = "created-with-devices", "otherGuest64"
	spec.Files = &types.VirtualMachineFileInfo{VmPathName: "[" + datastoreName + "]"}
	task, err := object.NewFolder(c, *ref.Parent).CreateVM(ctx, spec, object.NewResourcePool(c, *ref.ResourcePool), object.NewHostSystem(c, hostSim.Self))
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var created mo.VirtualMachine
	if err := object.NewVirtualMachine(c, info.Result.(types.ManagedObjectReference)).Properties(ctx, info.Result.(types.ManagedObjectReference), []string{"config.hardware.device"}, &created); err != nil {
		t.Fatal(err)
	}
	if n := checkPassthroughPlacement(t, "created", created.Config.Hardware.Device, hostSim.Hardware.PciDevice); n != 2 {
		t.Errorf("created VM has %d passthrough devices, want 2", n)
	}

	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		e.attach(vm, e.staticDevice("0000:3b:00.0"), dynamicDevice(0x10de, 0x20b5, "a100"))
		e.attach(vm, e.staticDevice("0000:3c:00.0"))
		devices := object.VirtualDeviceList(e.config(vm).Hardware.Device)
		if n := checkPassthroughPlacement(t, "reconfigured", devices, e.host.Hardware.PciDevice); n != 3 {
			t.Fatalf("%d devices", n)
		}
		// Removing one drops it from the controller too.
		first := pciPassthroughDevices(devices)[0]
		spec := types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{&types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: first,
		}}}
		if f := e.reconfigure(vm, spec); f != nil {
			t.Fatalf("remove: %#v", f)
		}
		devices = object.VirtualDeviceList(e.config(vm).Hardware.Device)
		pci := devices.PickController((*types.VirtualPCIController)(nil)).(*types.VirtualPCIController)
		if slices.Contains(pci.Device, first.Key) {
			t.Errorf("removed device %d still in the controller's device[] %v", first.Key, pci.Device)
		}
	})
}
