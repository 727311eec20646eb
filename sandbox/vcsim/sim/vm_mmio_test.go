package sim

import (
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// mmioVM is a VM's side of the 64-bit MMIO rule: its firmware and advanced settings.
type mmioVM struct {
	firmware string            // "" leaves the default (bios)
	extra    map[string]string // config.extraConfig
}

func on64(size string) map[string]string {
	return map[string]string{use64bitMMIOKey: "TRUE", mmioSizeGBKey: size}
}

// TestPowerOnMMIO covers the 64-bit MMIO rule at its boundaries: one device up to 16 GB and all
// of them up to 32 GB need nothing; beyond, EFI plus pciPassthru.use64bitMMIO = TRUE plus
// pciPassthru.64bitMMIOSizeGB ≥ the total (VMware blog on V100 passthrough, 2018; Denneman 2023).
func TestPowerOnMMIO(t *testing.T) {
	const (
		a, b, c = "0000:3b:00.0", "0000:3c:00.0", "0000:5e:00.0"
	)
	tests := []struct {
		name  string
		sizes map[string]int64 // the devices attached, with their BAR sizes in GB
		vm    mmioVM
		want  string // substring of the second message line; "" = powers on
	}{
		{"no large BAR", map[string]int64{a: 0}, mmioVM{}, ""},
		{"one device at 16 GB, BIOS", map[string]int64{a: 16}, mmioVM{}, ""},
		{"one device at 17 GB, BIOS", map[string]int64{a: 17}, mmioVM{},
			"device 0000:3b:00.0 needs 17 GB of MMIO, more than the 16 GB a device may map without 64-bit MMIO; 64-bit MMIO needs EFI firmware (config.firmware is \"bios\")"},
		{"one device at 17 GB, EFI without settings", map[string]int64{a: 17}, mmioVM{firmware: "efi"},
			"pciPassthru.use64bitMMIO is not set (64-bit MMIO is off)"},
		{"two devices at 32 GB total, BIOS", map[string]int64{a: 16, b: 16}, mmioVM{}, ""},
		{"three devices at 33 GB total, BIOS", map[string]int64{a: 16, b: 16, c: 1}, mmioVM{},
			"PCIPassthru: total number of pages needed (8650752) exceeds limit (8388608); 64-bit MMIO needs EFI firmware"},
		{"128 GB, EFI, size 128", map[string]int64{a: 128}, mmioVM{"efi", on64("128")}, ""},
		{"128 GB, EFI, size 127", map[string]int64{a: 128}, mmioVM{"efi", on64("127")},
			"PCIPassthru: total number of pages needed (33554432) exceeds limit (33292288); pciPassthru.64bitMMIOSizeGB is \"127\"; the passthrough devices need 128 GB"},
		{"128 GB, EFI, size missing", map[string]int64{a: 128}, mmioVM{"efi", map[string]string{use64bitMMIOKey: "TRUE"}},
			"pciPassthru.64bitMMIOSizeGB is not set; the passthrough devices need 128 GB"},
		{"128 GB, EFI, size not a number", map[string]int64{a: 128}, mmioVM{"efi", on64("lots")},
			"pciPassthru.64bitMMIOSizeGB is \"lots\""},
		{"128 GB, EFI, use64bitMMIO lower case", map[string]int64{a: 128},
			mmioVM{"efi", map[string]string{use64bitMMIOKey: "true", mmioSizeGBKey: "256"}}, ""},
		{"128 GB, EFI, use64bitMMIO FALSE", map[string]int64{a: 128},
			mmioVM{"efi", map[string]string{use64bitMMIOKey: "FALSE", mmioSizeGBKey: "256"}},
			"pciPassthru.use64bitMMIO is \"FALSE\", not \"TRUE\" (64-bit MMIO is off)"},
		{"128 GB, EFI, use64bitMMIO missing", map[string]int64{a: 128},
			mmioVM{"efi", map[string]string{mmioSizeGBKey: "256"}}, "pciPassthru.use64bitMMIO is not set"},
		{"128 GB, BIOS with the settings", map[string]int64{a: 128}, mmioVM{"bios", on64("256")},
			"64-bit MMIO needs EFI firmware (config.firmware is \"bios\")"},
		{"two devices 128 GB each, size 128", map[string]int64{a: 128, b: 128}, mmioVM{"efi", on64("128")},
			"total number of pages needed (67108864) exceeds limit (33554432)"},
		{"two devices 128 GB each, size 256", map[string]int64{a: 128, b: 128}, mmioVM{"efi", on64("256")}, ""},
		{"one device at 32 GB, size 32", map[string]int64{a: 32}, mmioVM{"efi", on64("32")}, ""},
		{"one device at 32 GB, size 16", map[string]int64{a: 32}, mmioVM{"efi", on64("16")},
			"total number of pages needed (8388608) exceeds limit (4194304)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withVMEnv(t, func(e *vmEnv) {
				vm := e.vms[0]
				var devices []types.BaseVirtualDevice
				for _, id := range []string{a, b, c} {
					if gb, ok := tt.sizes[id]; ok {
						e.setMMIO(id, gb)
						devices = append(devices, e.staticDevice(id))
					}
				}
				spec := addDevices(devices...)
				spec.MemoryReservationLockedToMax = types.NewBool(true)
				spec.Firmware = tt.vm.firmware
				for k, v := range tt.vm.extra {
					spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: v})
				}
				if f := e.reconfigure(vm, spec); f != nil {
					t.Fatalf("reconfigure: %#v", f)
				}
				f := e.powerOn(vm)
				if tt.want == "" {
					if f != nil {
						t.Fatalf("want power on, got %#v", f)
					}
					return
				}
				checkMMIOFault(t, f, tt.want)
				if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
					t.Error("VM powered on despite the fault")
				}
			})
		})
	}
}

// checkMMIOFault checks the fault's shape: GenericVmConfigFault, the module line first, then
// the explanation containing want.
func checkMMIOFault(t *testing.T, f types.BaseMethodFault, want string) {
	t.Helper()
	g, ok := f.(*types.GenericVmConfigFault)
	if !ok {
		t.Fatalf("want GenericVmConfigFault, got %#v", f)
	}
	if len(g.FaultMessage) != 2 || g.FaultMessage[0].Message != "Module 'DevicePowerOn' power on failed." {
		t.Fatalf("faultMessage: %+v", g.FaultMessage)
	}
	if !strings.Contains(g.FaultMessage[1].Message, want) {
		t.Fatalf("second line %q, want it to contain %q", g.FaultMessage[1].Message, want)
	}
	if g.Reason != g.FaultMessage[0].Message+"\n"+g.FaultMessage[1].Message {
		t.Errorf("reason %q is not the two lines", g.Reason)
	}
}

// A Dynamic DirectPath device counts with the size of the host device it would get: here the
// free A100 is the 128 GB one only while the other is held.
func TestPowerOnMMIODynamicUsesPickedDevice(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		holder, vm := e.vms[0], e.vms[1]
		e.setMMIO("0000:3b:00.0", 0)
		e.setMMIO("0000:3c:00.0", 128)
		e.attach(vm, dynamicDevice(0x10de, 0x20b5, "a100"))
		// Both free: the dynamic device gets 0000:3b:00.0, small BARs.
		if f := e.powerOn(vm); f != nil {
			t.Fatalf("with the small device free: %#v", f)
		}
		e.powerOff(vm)

		e.attach(holder, e.staticDevice("0000:3b:00.0"))
		if f := e.powerOn(holder); f != nil {
			t.Fatal(f)
		}
		f := e.powerOn(vm)
		checkMMIOFault(t, f, "total number of pages needed (33554432) exceeds limit (8388608); 64-bit MMIO needs EFI firmware")
		for _, d := range pciPassthroughDevices(e.config(vm).Hardware.Device) {
			if id := d.Backing.(*types.VirtualPCIPassthroughDynamicBackingInfo).AssignedId; id != "" {
				t.Errorf("refused power-on left assignedId %q", id)
			}
		}

		spec := types.VirtualMachineConfigSpec{Firmware: "efi"}
		for k, v := range on64("128") {
			spec.ExtraConfig = append(spec.ExtraConfig, &types.OptionValue{Key: k, Value: v})
		}
		if f := e.reconfigure(vm, spec); f != nil {
			t.Fatal(f)
		}
		if f := e.powerOn(vm); f != nil {
			t.Fatalf("with 64-bit MMIO set up: %#v", f)
		}
	})
}

// The task's info.error.localizedMessage carries both lines, and PowerOnMultiVM lists the VM as
// not attempted with the same text.
func TestPowerOnMMIOFaultText(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		e.setMMIO("0000:3b:00.0", 128)
		e.attach(vm, e.staticDevice("0000:3b:00.0"))
		task, err := e.obj(vm).PowerOn(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		_ = task.Wait(e.ctx)
		var info mo.Task
		if err := task.Properties(e.ctx, task.Reference(), []string{"info"}, &info); err != nil {
			t.Fatal(err)
		}
		want := "Module 'DevicePowerOn' power on failed.\nPCIPassthru: total number of pages needed (33554432) exceeds limit (8388608); " +
			"64-bit MMIO needs EFI firmware (config.firmware is \"bios\")"
		if info.Info.Error == nil || info.Info.Error.LocalizedMessage != want {
			t.Fatalf("localizedMessage: want %q, got %+v", want, info.Info.Error)
		}

		dc := object.NewDatacenter(e.c, e.m.Map().Any("Datacenter").Reference())
		mtask, err := dc.PowerOnVM(e.ctx, []types.ManagedObjectReference{vm.Self})
		if err != nil {
			t.Fatal(err)
		}
		res, err := mtask.WaitForResult(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		r := res.Result.(types.ClusterPowerOnVmResult)
		if len(r.NotAttempted) != 1 || r.NotAttempted[0].Fault.LocalizedMessage != want {
			t.Errorf("PowerOnMultiVM: %+v", r)
		}
		if vm.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOff {
			t.Error("VM powered on")
		}
	})
}
