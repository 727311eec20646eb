package sim

import (
	"fmt"
	"testing"

	"github.com/vmware/govmomi/vim25/types"
)

func (e *vmEnv) upgrade(vm *simVM, version string) types.BaseMethodFault {
	return e.wait(e.obj(vm).UpgradeVM(e.ctx, version))
}

// UpgradeVM_Task (vSphere API reference): powered off only, to the host's latest hardware by
// default (KB 315655: ESXi 8.0.2 runs up to vmx-21), config.version notified.
func TestUpgradeVM(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		vm := e.vms[0]
		vm.Config.Version = "vmx-15"

		if f := e.powerOn(vm); f != nil {
			t.Fatal(f)
		}
		f := e.upgrade(vm, "")
		if p, ok := f.(*types.InvalidPowerState); !ok || p.RequestedState != types.VirtualMachinePowerStatePoweredOff ||
			p.ExistingState != types.VirtualMachinePowerStatePoweredOn {
			t.Fatalf("powered on: want InvalidPowerState, got %#v", f)
		}
		if v := e.config(vm).Version; v != "vmx-15" {
			t.Fatalf("refused upgrade changed config.version to %s", v)
		}
		e.powerOff(vm)

		done := watch(t, e.c, vm.Self, "config.version", func(v any) bool { return v == "vmx-17" })
		if f := e.upgrade(vm, "vmx-17"); f != nil {
			t.Fatalf("to vmx-17: %#v", f)
		}
		if err := <-done; err != nil {
			t.Fatalf("config.version not notified: %v", err)
		}
		// Now a Dynamic DirectPath device is accepted (vm_reconfig.go).
		if f := e.reconfigure(vm, addDevices(dynamicDevice(0x10de, 0x20b5, "a100"))); f != nil {
			t.Fatalf("dynamic device after the upgrade: %#v", f)
		}

		if f := e.upgrade(vm, ""); f != nil {
			t.Fatalf("to the latest: %#v", f)
		}
		if v, hw := e.config(vm).Version, vm.Summary.Config.HwVersion; v != "vmx-21" || hw != "vmx-21" {
			t.Errorf("latest on ESXi 8.0.2: config.version %s, summary.config.hwVersion %s; want vmx-21", v, hw)
		}
	})
}

func TestUpgradeVMRefusals(t *testing.T) {
	tests := []struct {
		name, host, from, to string
		want                 types.BaseMethodFault
	}{
		{"same version", "8.0.2", "vmx-19", "vmx-19", &types.AlreadyUpgraded{}},
		{"older version", "8.0.2", "vmx-19", "vmx-17", &types.AlreadyUpgraded{}},
		{"already the host's latest", "8.0.2", "vmx-21", "", &types.AlreadyUpgraded{}},
		{"newer than the host runs", "8.0.2", "vmx-19", "vmx-22", &types.NotSupported{}},
		{"newer than ESXi 6.7 runs", "6.7.0", "vmx-13", "vmx-15", &types.NotSupported{}},
		{"malformed", "8.0.2", "vmx-19", "vmx-x", &types.InvalidArgument{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			withVMEnv(t, func(e *vmEnv) {
				e.host.Config.Product.Version = tt.host
				vm := e.vms[0]
				vm.Config.Version = tt.from
				f := e.upgrade(vm, tt.to)
				if f == nil || faultName(f) != faultName(tt.want) {
					t.Fatalf("want %s, got %#v", faultName(tt.want), f)
				}
				if faultMessage(f) == "" {
					t.Errorf("%s without a message", faultName(f))
				}
				if v := e.config(vm).Version; v != tt.from {
					t.Errorf("refused upgrade changed config.version to %s", v)
				}
			})
		})
	}
}

// ESXi 6.7 runs up to vmx-14 (KB 315655): the default target there.
func TestUpgradeVMLatestFollowsHostVersion(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		e.host.Config.Product.Version = "6.7.0"
		vm := e.vms[0]
		vm.Config.Version = "vmx-13"
		if f := e.upgrade(vm, ""); f != nil {
			t.Fatal(f)
		}
		if v := e.config(vm).Version; v != "vmx-14" {
			t.Errorf("latest on ESXi 6.7: %s, want vmx-14", v)
		}
	})
}

func faultName(f types.BaseMethodFault) string {
	return fmt.Sprintf("%T", f)
}
