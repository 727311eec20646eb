package sim

import (
	"errors"
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// mmioInventory: a 128 GB device and a small one; an EFI VM with the 64-bit MMIO settings
// powered on with the large device, a BIOS VM without them.
const mmioInventory = `
datacenters:
  - name: DC1
    hosts:
      - name: h1
        version: "8.0.2"
        pciDevices:
          - {address: "0000:3b:00.0", vendorId: "10de", deviceId: "20b5", enabled: true, active: true, mmioSizeGB: 128}
          - {address: "0000:af:00.0", vendorId: "10de", deviceId: "1eb8", enabled: true, active: true}
    vms:
      - name: efi-vm
        host: h1
        powerState: poweredOn
        memoryReservationLockedToMax: true
        firmware: efi
        extraConfig: {pciPassthru.use64bitMMIO: "TRUE", pciPassthru.64bitMMIOSizeGB: "128"}
        pciPassthrough: [{address: "0000:3b:00.0"}]
      - {name: bios-vm, host: h1}
`

func TestInventoryMMIOKeys(t *testing.T) {
	inv, err := ParseInventory([]byte(mmioInventory))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(inv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	h := s.Host("h1")
	if got := deviceMMIOGB(s.Map, h.Self, "0000:3b:00.0"); got != 128 {
		t.Errorf("mmioSizeGB of 0000:3b:00.0 = %d, want 128", got)
	}
	if got := deviceMMIOGB(s.Map, h.Self, "0000:af:00.0"); got != 0 {
		t.Errorf("mmioSizeGB of 0000:af:00.0 = %d, want 0", got)
	}

	c := connect(t, s).Client
	read := func(name string) mo.VirtualMachine {
		var vm mo.VirtualMachine
		pc := property.DefaultCollector(c)
		if err := pc.RetrieveOne(t.Context(), s.vmByName(name).Self, []string{"config.firmware", "config.extraConfig", "runtime.powerState"}, &vm); err != nil {
			t.Fatal(err)
		}
		return vm
	}
	efi := read("efi-vm")
	if efi.Config.Firmware != "efi" || efi.Runtime.PowerState != types.VirtualMachinePowerStatePoweredOn {
		t.Errorf("efi-vm: firmware %q, power %s", efi.Config.Firmware, efi.Runtime.PowerState)
	}
	got := map[string]any{}
	for _, o := range efi.Config.ExtraConfig {
		got[o.GetOptionValue().Key] = o.GetOptionValue().Value
	}
	if got[use64bitMMIOKey] != "TRUE" || got[mmioSizeGBKey] != "128" {
		t.Errorf("config.extraConfig = %v", got)
	}
	if fw := read("bios-vm").Config.Firmware; fw != "bios" {
		t.Errorf("bios-vm firmware %q, want the default bios", fw)
	}
}

func TestInventoryMMIOKeysValidated(t *testing.T) {
	for name, bad := range map[string]struct{ replace, with, want string }{
		"firmware":      {"firmware: efi", "firmware: uefi", `bad firmware "uefi"`},
		"negative size": {"mmioSizeGB: 128", "mmioSizeGB: -1", "mmioSizeGB -1 is negative"},
		"empty value":   {`pciPassthru.64bitMMIOSizeGB: "128"`, `pciPassthru.64bitMMIOSizeGB: ""`, "want a key and a non-empty value"},
		"unknown key":   {"mmioSizeGB: 128", "mmioSize: 128", "field mmioSize not found"},
		"dynamic below vmx-17": {"{name: bios-vm, host: h1}",
			`{name: bios-vm, host: h1, hardwareVersion: vmx-15, pciPassthrough: [{vendorId: "10de", deviceId: "20b5"}]}`,
			"a dynamic pciPassthrough device needs hardwareVersion vmx-17 or later, not vmx-15"},
		"bad hardwareVersion": {"{name: bios-vm, host: h1}", "{name: bios-vm, host: h1, hardwareVersion: vmx-x}", `bad hardwareVersion "vmx-x"`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ParseInventory([]byte(strings.Replace(mmioInventory, bad.replace, bad.with, 1)))
			if err == nil || !strings.Contains(err.Error(), bad.want) {
				t.Fatalf("want error containing %q, got %v", bad.want, err)
			}
		})
	}
}

// Without the settings the same inventory doesn't load: the VM it powers on is refused, as on
// vSphere.
func TestInventoryPowerOnFollowsMMIORule(t *testing.T) {
	inv, err := ParseInventory([]byte(strings.Replace(mmioInventory, "firmware: efi", "firmware: bios", 1)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(inv, Options{})
	if err == nil {
		s.Close()
		t.Fatal("inventory powered on a BIOS VM with a 128 GB device")
	}
	if !strings.Contains(err.Error(), "Module 'DevicePowerOn' power on failed.") {
		t.Fatalf("error: %v", err)
	}
}

// The default inventory's demo: bios-gpu-01 boots with BIOS, so an A100 (128 GB of BARs) never
// powers on there, even with the 64-bit MMIO settings; an injected fault still comes first. The
// EFI VMs listed publish config.firmware "efi".
func TestDefaultInventoryBIOSVMRefusesA100(t *testing.T) {
	s, srv := serveTest(t)
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, name := range []string{"ml-trainer-01", "ml-inference-01", "batch-01", "e1000-vm-01", "vmfex-gen2-01"} {
		if fw := s.vmByName(name).Config.Firmware; fw != "efi" {
			t.Errorf("%s: firmware %q, want efi", name, fw)
		}
	}
	// Passthrough on for esx-gpu-03's A100 (rebind without reboot: active at once).
	if err := updatePassthru(t, c, s, "esx-gpu-03.lab.local", types.HostPciPassthruConfig{Id: "0000:3b:00.0", PassthruEnabled: true}); err != nil {
		t.Fatal(err)
	}
	h := s.Host("esx-gpu-03.lab.local")
	pci := hostPciDevice(h, "0000:3b:00.0")
	spec := addDevices(&types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{Key: -1,
		Backing: &types.VirtualPCIPassthroughDeviceBackingInfo{
			Id: "0000:3b:00.0", DeviceId: pciIDHex(pci.DeviceId), SystemId: hostSystemID(h), VendorId: pci.VendorId,
		}}})
	spec.MemoryReservationLockedToMax = types.NewBool(true)
	spec.ExtraConfig = setExtraConfig(use64bitMMIOKey, "TRUE", mmioSizeGBKey, "256").ExtraConfig
	vm := object.NewVirtualMachine(c, s.vmByName("bios-gpu-01").Self)
	tk, err := vm.Reconfigure(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := tk.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	admin(t, srv, "POST", "/faults", InjectedFault{Method: "PowerOnVM_Task", Fault: "HostCommunication"}, nil)
	if _, err := vm.PowerOn(ctx); err == nil || !soap.IsSoapFault(err) {
		t.Fatalf("injected fault: want a SOAP fault, got %v", err)
	} else if _, ok := soap.ToSoapFault(err).VimFault().(types.HostCommunication); !ok {
		t.Fatalf("injected fault: got %#v", soap.ToSoapFault(err).VimFault())
	}

	tk, err = vm.PowerOn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var te task.Error
	if err := tk.Wait(ctx); !errors.As(err, &te) {
		t.Fatalf("power on: want a task fault, got %v", err)
	}
	checkMMIOFault(t, te.Fault(), "64-bit MMIO needs EFI firmware (config.firmware is \"bios\")")
	if state := s.vmByName("bios-gpu-01").Runtime.PowerState; state != types.VirtualMachinePowerStatePoweredOff {
		t.Errorf("bios-gpu-01 is %s", state)
	}
}
