package sim

import (
	"testing"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// gen2NIC is a vmxnet3 adapter in "high performance" mode on the model's distributed port group.
func gen2NIC(pg *simulator.DistributedVirtualPortgroup, dvsUUID string) *types.VirtualVmxnet3 {
	nic := &types.VirtualVmxnet3{}
	nic.Key = -100
	nic.UptCompatibilityEnabled = types.NewBool(true)
	nic.Backing = &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
		Port: types.DistributedVirtualSwitchPortConnection{PortgroupKey: pg.Key, SwitchUuid: dvsUUID},
	}
	nic.Connectable = &types.VirtualDeviceConnectInfo{StartConnected: true}
	return nic
}

func (e *vmEnv) runtimeDevice(vm *simVM) []types.VirtualMachineDeviceRuntimeInfo {
	e.t.Helper()
	var o mo.VirtualMachine
	if err := e.obj(vm).Properties(e.ctx, vm.Self, []string{"runtime.device"}, &o); err != nil {
		e.t.Fatal(err)
	}
	return o.Runtime.Device
}

// gen2Of returns the runtime state of the VM's adapter with the given key.
func (e *vmEnv) gen2Of(vm *simVM, key int32) *types.VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeState {
	for _, d := range e.runtimeDevice(vm) {
		if d.Key == key {
			return d.RuntimeState.(*types.VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeState)
		}
	}
	return nil
}

func TestGen2Runtime(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		pg := e.m.Map().Any("DistributedVirtualPortgroup").(*simulator.DistributedVirtualPortgroup)
		dvs := e.m.Map().Get(*pg.Config.DistributedVirtualSwitch).(*simulator.DistributedVirtualSwitch)
		pg.Config.DefaultPortConfig.GetDVPortSetting().VmDirectPathGen2Allowed = &types.BoolPolicy{Value: types.NewBool(true)}
		e.host.Capability.VmDirectPathGen2Supported = types.NewBool(true)

		vm := e.vms[0]
		e.fullReservation(vm)
		if f := e.reconfigure(vm, addDevices(gen2NIC(pg, dvs.Uuid))); f != nil {
			t.Fatal(f)
		}
		var key int32
		for _, d := range vm.Config.Hardware.Device {
			if n, ok := d.(*types.VirtualVmxnet3); ok && n.UptCompatibilityEnabled != nil && *n.UptCompatibilityEnabled {
				key = n.Key
			}
		}
		if len(e.runtimeDevice(vm)) != 0 {
			t.Fatal("runtime.device set while powered off")
		}
		if f := e.powerOn(vm); f != nil {
			t.Fatal(f)
		}
		s := e.gen2Of(vm, key)
		if s == nil || s.VmDirectPathGen2Active == nil || !*s.VmDirectPathGen2Active {
			t.Fatalf("want Gen2 active, got %+v", s)
		}
		// Other adapters of the VM (e1000 on a standard network) are reported inactive.
		for _, d := range e.runtimeDevice(vm) {
			st := d.RuntimeState.(*types.VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeState)
			if d.Key != key && *st.VmDirectPathGen2Active {
				t.Errorf("adapter %d active", d.Key)
			}
		}

		e.powerOff(vm)
		if len(e.runtimeDevice(vm)) != 0 {
			t.Error("runtime.device kept after power off")
		}

		// Host without Gen2 support, port group not allowing it.
		e.host.Capability.VmDirectPathGen2Supported = types.NewBool(false)
		pg.Config.DefaultPortConfig.GetDVPortSetting().VmDirectPathGen2Allowed = &types.BoolPolicy{Value: types.NewBool(false)}
		if f := e.powerOn(vm); f != nil {
			t.Fatal(f)
		}
		s = e.gen2Of(vm, key)
		if *s.VmDirectPathGen2Active || len(s.VmDirectPathGen2InactiveReasonOther) != 2 ||
			s.VmDirectPathGen2InactiveReasonOther[0] != "vmNptIncompatibleHost" || s.VmDirectPathGen2InactiveReasonOther[1] != "vmNptIncompatibleNetwork" {
			t.Errorf("want inactive for host and network, got %+v", s)
		}
		e.powerOff(vm)

		// A PCI passthrough device rules Gen2 out.
		e.host.Capability.VmDirectPathGen2Supported = types.NewBool(true)
		pg.Config.DefaultPortConfig.GetDVPortSetting().VmDirectPathGen2Allowed = &types.BoolPolicy{Value: types.NewBool(true)}
		e.attach(vm, e.staticDevice("0000:3b:00.0"))
		if f := e.powerOn(vm); f != nil {
			t.Fatal(f)
		}
		s = e.gen2Of(vm, key)
		if *s.VmDirectPathGen2Active || len(s.VmDirectPathGen2InactiveReasonVm) != 1 || s.VmDirectPathGen2InactiveReasonVm[0] != "vmNptMonitorBlocks" {
			t.Errorf("with a PCI device: %+v", s)
		}
	})
}

func TestGen2InactiveReasonsVm(t *testing.T) {
	withVMEnv(t, func(e *vmEnv) {
		e.host.Capability.VmDirectPathGen2Supported = types.NewBool(true)
		vm := e.vms[0]
		// The model's VMs have an e1000 on the distributed port group (Gen2 not allowed) and no
		// memory reservation.
		if f := e.powerOn(vm); f != nil {
			t.Fatal(f)
		}
		devs := e.runtimeDevice(vm)
		if len(devs) == 0 {
			t.Fatal("no runtime.device for a powered-on VM with an adapter")
		}
		s := devs[0].RuntimeState.(*types.VirtualMachineDeviceRuntimeInfoVirtualEthernetCardRuntimeState)
		want := map[string]bool{"vmNptIncompatibleAdapterType": true, "vmNptInsufficientMemoryReservation": true, "vmNptIncompatibleNetwork": true}
		for _, r := range append(s.VmDirectPathGen2InactiveReasonVm, s.VmDirectPathGen2InactiveReasonOther...) {
			delete(want, r)
		}
		if *s.VmDirectPathGen2Active || len(want) != 0 {
			t.Errorf("missing reasons %v in %+v", want, s)
		}
	})
}
