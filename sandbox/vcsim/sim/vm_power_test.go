package sim

import (
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func TestPowerOnStaticRules(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(e *vmEnv, vm *vmWithDevice)
		want    string // substring of the GenericVmConfigFault reason; "" = powers on
	}{
		{"valid backing", func(*vmEnv, *vmWithDevice) {}, ""},
		{"no memory reservation", func(e *vmEnv, v *vmWithDevice) {
			v.spec.MemoryReservationLockedToMax = nil
		}, "memory reservation (sched.mem.min) should be equal to memsize(4096)"},
		{"decimal deviceId", func(e *vmEnv, v *vmWithDevice) {
			v.backing.DeviceId = "8373" // 0x20b5 in decimal (govmomi #2248)
		}, "deviceId"},
		{"upper-case deviceId", func(e *vmEnv, v *vmWithDevice) { v.backing.DeviceId = "20B5" }, "deviceId"},
		{"wrong systemId", func(e *vmEnv, v *vmWithDevice) { v.backing.SystemId = "other-host" }, "systemId"},
		{"wrong vendorId", func(e *vmEnv, v *vmWithDevice) { v.backing.VendorId = wire16(0x8086) }, "vendorId"},
		{"device not active", func(e *vmEnv, v *vmWithDevice) {
			*v.backing = *e.staticDevice("0000:af:00.0").Backing.(*types.VirtualPCIPassthroughDeviceBackingInfo)
		}, "not an active passthrough device"},
		{"unknown device", func(e *vmEnv, v *vmWithDevice) { v.backing.Id = "0000:00:1f.0" }, "not an active passthrough device"},
		{"nested HV", func(e *vmEnv, v *vmWithDevice) { v.spec.NestedHVEnabled = types.NewBool(true) }, "nested HV"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withVMEnv(t, func(e *vmEnv) {
				v := newVMWithDevice(e, e.vms[0], "0000:3b:00.0")
				tt.prepare(e, v)
				if f := e.reconfigure(v.vm, v.spec); f != nil {
					t.Fatalf("reconfigure: %#v", f)
				}
				f := e.powerOn(v.vm)
				if tt.want == "" {
					if f != nil {
						t.Fatalf("want power on, got %#v", f)
					}
					return
				}
				if !strings.Contains(reason(f), tt.want) {
					t.Fatalf("want fault containing %q, got %#v", tt.want, f)
				}
				if v.vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
					t.Error("VM powered on despite the fault")
				}
			})
		})
	}
}

// vmWithDevice is a reconfigure spec adding one static device, with the full reservation.
type vmWithDevice struct {
	vm      *simVM
	spec    types.VirtualMachineConfigSpec
	backing *types.VirtualPCIPassthroughDeviceBackingInfo
}

func newVMWithDevice(e *vmEnv, vm *simVM, id string) *vmWithDevice {
	d := e.staticDevice(id)
	spec := addDevices(d)
	spec.MemoryReservationLockedToMax = types.NewBool(true)
	return &vmWithDevice{vm: vm, spec: spec, backing: d.Backing.(*types.VirtualPCIPassthroughDeviceBackingInfo)}
}

func TestPowerOnDeviceHeldByAnotherVM(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		a, b := e.vms[0], e.vms[1]
		e.attach(a, e.staticDevice("0000:3b:00.0"))
		e.attach(b, e.staticDevice("0000:3b:00.0"))
		if f := e.powerOn(a); f != nil {
			t.Fatalf("first VM: %#v", f)
		}
		if f := e.powerOn(b); !strings.Contains(reason(f), "already in use by virtual machine "+a.Name) {
			t.Fatalf("second VM: want in-use fault, got %#v", f)
		}
		e.powerOff(a)
		if f := e.powerOn(b); f != nil {
			t.Fatalf("second VM after the first powered off: %#v", f)
		}
	})
}

func TestPowerOnDynamicPicksFreeDevice(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		if len(e.vms) < 3 {
			t.Skip("needs 3 VMs")
		}
		for _, vm := range e.vms[:3] {
			e.attach(vm, dynamicDevice(0x10de, 0x20b5, "a100"))
		}
		assigned := func(vm *simVM) string {
			for _, d := range pciPassthroughDevices(e.config(vm).Hardware.Device) {
				return d.Backing.(*types.VirtualPCIPassthroughDynamicBackingInfo).AssignedId
			}
			return ""
		}
		if f := e.powerOn(e.vms[0]); f != nil {
			t.Fatal(f)
		}
		if f := e.powerOn(e.vms[1]); f != nil {
			t.Fatal(f)
		}
		got := []string{assigned(e.vms[0]), assigned(e.vms[1])}
		if got[0] != "0000:3b:00.0" || got[1] != "0000:3c:00.0" {
			t.Fatalf("assigned: %v", got)
		}
		// Both a100 devices are taken; the Intel device and the inactive T4 don't match.
		if f := e.powerOn(e.vms[2]); !strings.Contains(reason(f), "no free passthrough device") {
			t.Fatalf("third VM: want no-device fault, got %#v", f)
		}
		if assigned(e.vms[2]) != "" {
			t.Error("failed power-on kept an assignedId")
		}
		e.powerOff(e.vms[0])
		if assigned(e.vms[0]) != "" {
			t.Error("power off kept the assignedId")
		}
		if f := e.powerOn(e.vms[2]); f != nil || assigned(e.vms[2]) != "0000:3b:00.0" {
			t.Fatalf("third VM after release: %#v, %q", f, assigned(e.vms[2]))
		}
	})
}

func TestPowerOnDynamicMasksNegativeVendorID(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		e.attach(vm, dynamicDevice(0x8086, 0x158b, "")) // Intel: vendor id negative as int16
		if f := e.powerOn(vm); f != nil {
			t.Fatal(f)
		}
		// A label that no device carries can't be satisfied.
		vm2 := e.vms[1]
		e.attach(vm2, dynamicDevice(0x10de, 0x20b5, "h100"))
		if f := e.powerOn(vm2); !strings.Contains(reason(f), "with label h100") {
			t.Fatalf("want label fault, got %#v", f)
		}
	})
}

func TestPowerOnMultiVMReportsNotAttempted(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		good, bad := e.vms[0], e.vms[1]
		e.attach(good, e.staticDevice("0000:3b:00.0"))
		if f := e.reconfigure(bad, addDevices(e.staticDevice("0000:3c:00.0"))); f != nil { // no reservation
			t.Fatal(f)
		}
		dc := object.NewDatacenter(e.c, e.m.Map().Any("Datacenter").Reference())
		task, err := dc.PowerOnVM(e.ctx, []types.ManagedObjectReference{good.Self, bad.Self})
		if err != nil {
			t.Fatal(err)
		}
		info, err := task.WaitForResult(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		res := info.Result.(types.ClusterPowerOnVmResult)
		if len(res.Attempted) != 1 || res.Attempted[0].Vm != good.Self {
			t.Errorf("attempted: %+v", res.Attempted)
		}
		if len(res.NotAttempted) != 1 || res.NotAttempted[0].Vm != bad.Self ||
			!strings.Contains(res.NotAttempted[0].Fault.LocalizedMessage, "sched.mem.min") {
			t.Errorf("not attempted: %+v", res.NotAttempted)
		}
		if good.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn || bad.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			t.Errorf("power states: %s %s", good.Runtime.PowerState, bad.Runtime.PowerState)
		}
	})
}

func TestSnapshotAndSuspendRefused(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		// Without a passthrough device both work (upstream behaviour untouched).
		if f := e.wait(e.obj(vm).CreateSnapshot(e.ctx, "before", "", false, false)); f != nil {
			t.Fatalf("snapshot without device: %#v", f)
		}
		if f := e.wait(e.obj(vm).RemoveAllSnapshot(e.ctx, nil)); f != nil {
			t.Fatal(f)
		}
		e.attach(vm, e.staticDevice("0000:3b:00.0"))
		f := e.wait(e.obj(vm).CreateSnapshot(e.ctx, "s1", "", false, false))
		if _, ok := f.(*types.SnapshotIncompatibleDeviceInVm); !ok {
			t.Fatalf("CreateSnapshot: want SnapshotIncompatibleDeviceInVm, got %#v", f)
		}
		f = e.wait(e.obj(vm).CreateSnapshotEx(e.ctx, "s2", "", false, nil))
		if _, ok := f.(*types.SnapshotIncompatibleDeviceInVm); !ok {
			t.Fatalf("CreateSnapshotEx: want SnapshotIncompatibleDeviceInVm, got %#v", f)
		}
		if vm.Snapshot != nil && len(vm.Snapshot.RootSnapshotList) != 0 {
			t.Error("snapshot created")
		}
		if f := e.powerOn(vm); f != nil {
			t.Fatal(f)
		}
		if _, ok := e.wait(e.obj(vm).Suspend(e.ctx)).(*types.NotSupported); !ok {
			t.Fatal("suspend: want NotSupported")
		}
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
			t.Errorf("power state after refused suspend: %s", vm.Runtime.PowerState)
		}
	})
}

// A guest shutdown releases Dynamic DirectPath devices and clears the Gen2 runtime state, like a
// power-off (vSphere API reference, VirtualPCIPassthroughDynamicBackingInfo.assignedId).
func TestShutdownGuestReleasesDevices(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		e.attach(vm, dynamicDevice(0x10de, 0x20b5, "a100"))
		if f := e.powerOn(vm); f != nil {
			t.Fatal(f)
		}
		assigned := func() string {
			for _, d := range pciPassthroughDevices(e.config(vm).Hardware.Device) {
				return d.Backing.(*types.VirtualPCIPassthroughDynamicBackingInfo).AssignedId
			}
			return ""
		}
		if assigned() == "" {
			t.Fatal("power on assigned no device")
		}
		if err := e.obj(vm).ShutdownGuest(e.ctx); err != nil {
			t.Fatal(err)
		}
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			t.Fatalf("power state after guest shutdown: %s", vm.Runtime.PowerState)
		}
		if got := assigned(); got != "" {
			t.Errorf("guest shutdown kept assignedId %q", got)
		}
		if rt := e.runtimeDevice(vm); len(rt) != 0 {
			t.Errorf("guest shutdown kept runtime.device %v", rt)
		}
		// A second shutdown of a powered-off VM is refused, as on vSphere.
		if err := e.obj(vm).ShutdownGuest(e.ctx); err == nil {
			t.Error("shutdown of a powered-off VM succeeded")
		}
	})
}

// A refused power-on reports vSphere's text in info.error.localizedMessage, where clients read it.
func TestFailedTaskLocalizedMessage(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		v := newVMWithDevice(e, e.vms[0], "0000:3b:00.0")
		v.spec.MemoryReservationLockedToMax = nil
		if f := e.reconfigure(v.vm, v.spec); f != nil {
			t.Fatal(f)
		}
		task, err := e.obj(v.vm).PowerOn(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = task.Wait(e.ctx)
		var info mo.Task
		if err := task.Properties(e.ctx, task.Reference(), []string{"info"}, &info); err != nil {
			t.Fatal(err)
		}
		want := "memory reservation (sched.mem.min) should be equal to memsize(4096)"
		if info.Info.Error == nil || !strings.Contains(info.Info.Error.LocalizedMessage, want) {
			t.Fatalf("localizedMessage: want %q, got %+v", want, info.Info.Error)
		}
	})
}
