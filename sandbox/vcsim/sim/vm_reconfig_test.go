package sim

import (
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/types"
)

func TestReconfigPassthroughNeedsPowerOff(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		e.fullReservation(vm)
		if f := e.powerOn(vm); f != nil {
			t.Fatalf("power on: %#v", f)
		}
		f := e.reconfigure(vm, addDevices(e.staticDevice("0000:3b:00.0")))
		ips, ok := f.(*types.InvalidPowerState)
		if !ok || ips.ExistingState != types.VirtualMachinePowerStatePoweredOn {
			t.Fatalf("add on powered-on VM: want InvalidPowerState, got %#v", f)
		}

		e.powerOff(vm)
		e.attach(vm, e.staticDevice("0000:3b:00.0"), dynamicDevice(0x10de, 0x20b5, "a100"))

		devices := object.VirtualDeviceList(e.config(vm).Hardware.Device).SelectByType((*types.VirtualPCIPassthrough)(nil))
		if len(devices) != 2 {
			t.Fatalf("want 2 passthrough devices, got %d", len(devices))
		}
		static := devices[0].(*types.VirtualPCIPassthrough)
		if static.Key != 13000 || devices[1].GetVirtualDevice().Key != 13001 {
			t.Errorf("keys: want 13000, 13001, got %d, %d", static.Key, devices[1].GetVirtualDevice().Key)
		}
		b, ok := static.Backing.(*types.VirtualPCIPassthroughDeviceBackingInfo)
		if !ok || b.Id != "0000:3b:00.0" || b.DeviceId != "20b5" || b.SystemId != hostSystemID(e.host) || uint16(b.VendorId) != 0x10de {
			t.Errorf("static backing not stored as given: %#v", static.Backing)
		}
		d, ok := devices[1].GetVirtualDevice().Backing.(*types.VirtualPCIPassthroughDynamicBackingInfo)
		if !ok || d.CustomLabel != "a100" || len(d.AllowedDevice) != 1 || d.AllowedDevice[0].DeviceId != 0x20b5 {
			t.Errorf("dynamic backing not stored as given: %#v", devices[1].GetVirtualDevice().Backing)
		}
		if static.DeviceInfo.GetDescription().Label != "PCI device 0" {
			t.Errorf("label: %q", static.DeviceInfo.GetDescription().Label)
		}

		// Removing one needs the VM powered off too.
		if f := e.powerOn(vm); f != nil {
			t.Fatalf("power on: %#v", f)
		}
		remove := types.VirtualMachineConfigSpec{DeviceChange: []types.BaseVirtualDeviceConfigSpec{
			&types.VirtualDeviceConfigSpec{Operation: types.VirtualDeviceConfigSpecOperationRemove, Device: static},
		}}
		if _, ok := e.reconfigure(vm, remove).(*types.InvalidPowerState); !ok {
			t.Fatal("remove on powered-on VM: want InvalidPowerState")
		}
		// Other changes on a powered-on VM are not affected.
		if f := e.reconfigure(vm, types.VirtualMachineConfigSpec{Annotation: "x"}); f != nil {
			t.Fatalf("annotation: %#v", f)
		}
		e.powerOff(vm)
		if f := e.reconfigure(vm, remove); f != nil {
			t.Fatalf("remove: %#v", f)
		}
		if n := len(pciPassthroughDevices(e.config(vm).Hardware.Device)); n != 1 {
			t.Errorf("want 1 device left, got %d", n)
		}
	})
}

func TestReconfigChangeVersion(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		if f := e.reconfigure(vm, types.VirtualMachineConfigSpec{Annotation: "a"}); f != nil {
			t.Fatal(f)
		}
		v1 := e.config(vm).ChangeVersion
		if v1 == "" {
			t.Fatal("no changeVersion after reconfigure")
		}
		if f := e.reconfigure(vm, types.VirtualMachineConfigSpec{Annotation: "b", ChangeVersion: v1}); f != nil {
			t.Fatalf("current changeVersion: %#v", f)
		}
		v2 := e.config(vm).ChangeVersion
		if v2 == v1 {
			t.Fatal("changeVersion not updated")
		}
		f := e.reconfigure(vm, types.VirtualMachineConfigSpec{Annotation: "c", ChangeVersion: v1})
		if _, ok := f.(*types.ConcurrentAccess); !ok {
			t.Fatalf("stale changeVersion: want ConcurrentAccess, got %#v", f)
		}
		if got := e.config(vm); got.Annotation != "b" || got.ChangeVersion != v2 {
			t.Errorf("stale reconfigure changed the VM: %q %q", got.Annotation, got.ChangeVersion)
		}
	})
}

func TestReconfigMemoryReservationLockedToMax(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		e.fullReservation(vm)
		cfg := e.config(vm)
		if r := cfg.MemoryAllocation.Reservation; r == nil || *r != 4096 {
			t.Fatalf("reservation: want 4096, got %+v (memoryMB %d)", cfg.MemoryAllocation, cfg.Hardware.MemoryMB)
		}
		if cfg.MemoryAllocation.Limit == nil || *cfg.MemoryAllocation.Limit != -1 {
			t.Errorf("limit lost: %v", cfg.MemoryAllocation.Limit)
		}
		// The reservation follows memory size while locked.
		if f := e.reconfigure(vm, types.VirtualMachineConfigSpec{MemoryMB: 8192}); f != nil {
			t.Fatal(f)
		}
		if r := e.config(vm).MemoryAllocation.Reservation; *r != 8192 {
			t.Errorf("reservation after resize: want 8192, got %d", *r)
		}
		// A partial allocation keeps the rest.
		spec := types.VirtualMachineConfigSpec{
			MemoryReservationLockedToMax: types.NewBool(false),
			MemoryAllocation:             &types.ResourceAllocationInfo{Reservation: types.NewInt64(1024)},
		}
		if f := e.reconfigure(vm, spec); f != nil {
			t.Fatal(f)
		}
		cfg = e.config(vm)
		if *cfg.MemoryAllocation.Reservation != 1024 || cfg.MemoryAllocation.Limit == nil {
			t.Errorf("partial allocation: %+v", cfg.MemoryAllocation)
		}
	})
}

func TestReconfigTooManyDevices(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		e.host.Config.Product.Version = "4.0.0"
		vm := e.vms[0]
		e.attach(vm, e.staticDevice("0000:3b:00.0"), e.staticDevice("0000:3c:00.0"))
		f := e.reconfigure(vm, addDevices(e.staticDevice("0000:5e:00.0")))
		if _, ok := f.(*types.TooManyDevices); !ok {
			t.Fatalf("third device on 4.0: want TooManyDevices, got %#v", f)
		}
	})
}

func TestReconfigRejectsEmptyBacking(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		d := &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{Key: -1}}
		if _, ok := e.reconfigure(e.vms[0], addDevices(d)).(*types.InvalidDeviceBacking); !ok {
			t.Fatal("want InvalidDeviceBacking")
		}
	})
}

func TestReconfigNotifiesReservation(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		calls := 0
		errc := make(chan types.BaseMethodFault, 1)
		err := property.Wait(e.ctx, property.DefaultCollector(e.c), vm.Self, []string{"config.memoryAllocation.reservation"}, func(changes []types.PropertyChange) bool {
			calls++
			if calls == 1 {
				go func() {
					errc <- e.reconfigure(vm, types.VirtualMachineConfigSpec{MemoryReservationLockedToMax: types.NewBool(true)})
				}()
				return false
			}
			for _, c := range changes {
				if r, ok := c.Val.(int64); ok && r == 4096 {
					return true
				}
			}
			return false
		})
		if err != nil {
			t.Fatal(err)
		}
		if f := <-errc; f != nil {
			t.Fatal(f)
		}
	})
}

// Dynamic DirectPath I/O needs virtual hardware 17 (vSphere 7.0 docs; BOSH vSphere CPI PR #370):
// below it ReconfigVM_Task fails with DeviceUnsupportedForVmVersion and nothing changes. A
// static device is fine on older hardware, and spec.version does not upgrade (UpgradeVM_Task does).
func TestReconfigDynamicNeedsHardwareVersion17(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		vm.Config.Version = "vmx-15"
		before := vm.Config.ChangeVersion

		spec := addDevices(e.staticDevice("0000:3b:00.0"), dynamicDevice(0x10de, 0x20b5, "a100"))
		spec.Version = "vmx-19"
		f := e.reconfigure(vm, spec)
		got, ok := f.(*types.DeviceUnsupportedForVmVersion)
		if !ok || got.CurrentVersion != "vmx-15" || got.ExpectedVersion != "vmx-17" || got.DeviceIndex != 1 {
			t.Fatalf("want DeviceUnsupportedForVmVersion(vmx-15, vmx-17, index 1), got %#v", f)
		}
		cfg := e.config(vm)
		if n := len(pciPassthroughDevices(cfg.Hardware.Device)); n != 0 || cfg.ChangeVersion != before || cfg.Version != "vmx-15" {
			t.Fatalf("refused reconfigure changed the VM: %d devices, changeVersion %s→%s, version %s", n, before, cfg.ChangeVersion, cfg.Version)
		}

		if f := e.reconfigure(vm, types.VirtualMachineConfigSpec{Version: "vmx-19"}); f != nil {
			t.Fatal(f)
		}
		if v := e.config(vm).Version; v != "vmx-15" {
			t.Errorf("reconfigure with spec.version changed config.version to %s", v)
		}
		if f := e.reconfigure(vm, addDevices(e.staticDevice("0000:3b:00.0"))); f != nil {
			t.Fatalf("static device on vmx-15: %#v", f)
		}

		vm = e.vms[1]
		vm.Config.Version = "vmx-17"
		if f := e.reconfigure(vm, addDevices(dynamicDevice(0x10de, 0x20b5, "a100"))); f != nil {
			t.Fatalf("dynamic device on vmx-17: %#v", f)
		}
	})
}

// extraConfigMap reads config.extraConfig as a client gets it (a property value or a config).
func extraConfigMap(v any) map[string]string {
	var list []types.BaseOptionValue
	switch o := v.(type) {
	case types.ArrayOfOptionValue:
		list = o.OptionValue
	case []types.BaseOptionValue:
		list = o
	}
	out := map[string]string{}
	for _, b := range list {
		if ov := b.GetOptionValue(); ov != nil {
			out[ov.Key], _ = ov.Value.(string)
		}
	}
	return out
}

func setExtraConfig(kv ...string) types.VirtualMachineConfigSpec {
	var spec types.VirtualMachineConfigSpec
	for i := 0; i+1 < len(kv); i += 2 {
		spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: kv[i], Value: kv[i+1]})
	}
	return spec
}

// extraConfig changes apply and are notified on config.extraConfig; a key set to "" is removed
// and an empty value for a missing key adds nothing (vSphere API reference,
// VirtualMachineConfigSpec.extraConfig).
func TestReconfigExtraConfig(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		added := watch(t, e.c, vm.Self, "config.extraConfig", func(v any) bool {
			m := extraConfigMap(v)
			return m[use64bitMMIOKey] == "TRUE" && m[mmioSizeGBKey] == "128"
		})
		if f := e.reconfigure(vm, setExtraConfig(use64bitMMIOKey, "TRUE", mmioSizeGBKey, "128")); f != nil {
			t.Fatal(f)
		}
		if err := <-added; err != nil {
			t.Fatalf("add not notified: %v", err)
		}

		changed := watch(t, e.c, vm.Self, "config.extraConfig", func(v any) bool {
			m := extraConfigMap(v)
			_, has := m[use64bitMMIOKey]
			return !has && m[mmioSizeGBKey] == "256"
		})
		if f := e.reconfigure(vm, setExtraConfig(use64bitMMIOKey, "", mmioSizeGBKey, "256", "never.set", "")); f != nil {
			t.Fatal(f)
		}
		if err := <-changed; err != nil {
			t.Fatalf("remove/edit not notified: %v", err)
		}
		m := extraConfigMap(e.config(vm).ExtraConfig)
		if _, has := m[use64bitMMIOKey]; has {
			t.Errorf("key set to \"\" still there: %v", m)
		}
		if _, has := m["never.set"]; has {
			t.Errorf("empty value for a missing key was stored: %v", m)
		}
		if m[mmioSizeGBKey] != "256" {
			t.Errorf("edit not applied: %v", m)
		}
	})
}

// A firmware change (bios → efi, for 64-bit MMIO) is applied by upstream and notified here.
func TestReconfigFirmwareNotified(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		done := watch(t, e.c, vm.Self, "config.firmware", func(v any) bool { return v == "efi" })
		if f := e.reconfigure(vm, types.VirtualMachineConfigSpec{Firmware: "efi"}); f != nil {
			t.Fatal(f)
		}
		if err := <-done; err != nil {
			t.Fatalf("config.firmware not notified: %v", err)
		}
	})
}
