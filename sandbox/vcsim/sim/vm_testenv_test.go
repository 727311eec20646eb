package sim

import (
	"context"
	"errors"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/task"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vmEnv is the simulator's default VPX model with the passthrough overrides installed and one
// cluster host (ESXi 8.0.2) given PCI devices, the way the inventory loader sets them (none
// maps more than 16 GB unless a test says so with setMMIO):
//
//	0000:3b:00.0  NVIDIA 10de:20b5  active, label a100
//	0000:3c:00.0  NVIDIA 10de:20b5  active, label a100
//	0000:5e:00.0  Intel  8086:158b  active (vendor id negative on the wire)
//	0000:af:00.0  NVIDIA 10de:1eb8  enabled, not active (reboot pending)
type vmEnv struct {
	t    *testing.T
	ctx  context.Context
	c    *vim25.Client
	m    *simulator.Model
	host *simulator.HostSystem
	vms  []*simulator.VirtualMachine // powered-off VMs on host, vmx-19, BIOS, 4096 MB, no reservation
}

// simVM is the simulator object of a VM.
type (
	simVM        = simulator.VirtualMachine
	simHost      = simulator.HostSystem
	simVMCluster = simulator.ClusterComputeResource
)

func wire16(v uint16) int16 { return int16(v) }

func withVMEnv(t *testing.T, f func(e *vmEnv)) {
	t.Helper()
	m := simulator.VPX()
	m.Machine = 3
	if err := m.Create(); err != nil {
		t.Fatal(err)
	}
	Install(m.Map())
	err := m.Run(func(ctx context.Context, c *vim25.Client) error {
		e := &vmEnv{t: t, ctx: ctx, c: c, m: m}
		e.setUp()
		f(e)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (e *vmEnv) setUp() {
	reg := e.m.Map()
	cluster := reg.Any("ClusterComputeResource").(*simulator.ClusterComputeResource)
	e.host = reg.Get(cluster.Host[0]).(*simulator.HostSystem)
	e.host.Config.Product.Version = "8.0.2"
	e.host.Hardware.SystemInfo.Uuid = "4c4c4544-0042-3510-8053-b4c04f4e4d32"
	e.host.Hardware.PciDevice = []types.HostPciDevice{
		{Id: "0000:3b:00.0", VendorId: wire16(0x10de), DeviceId: wire16(0x20b5), VendorName: "NVIDIA Corporation", DeviceName: "GA100 [A100 PCIe 40GB]"},
		{Id: "0000:3c:00.0", VendorId: wire16(0x10de), DeviceId: wire16(0x20b5), VendorName: "NVIDIA Corporation", DeviceName: "GA100 [A100 PCIe 40GB]"},
		{Id: "0000:5e:00.0", VendorId: wire16(0x8086), DeviceId: wire16(0x158b), VendorName: "Intel(R)", DeviceName: "Ethernet Controller XXV710"},
		{Id: "0000:af:00.0", VendorId: wire16(0x10de), DeviceId: wire16(0x1eb8), VendorName: "NVIDIA Corporation", DeviceName: "TU104GL [Tesla T4]"},
	}
	info := func(id, label string, active bool) types.BaseHostPciPassthruInfo {
		return &types.HostPciPassthruInfo{Id: id, PassthruCapable: true, PassthruEnabled: true, PassthruActive: active, HardwareLabel: label}
	}
	e.host.Config.PciPassthruInfo = []types.BaseHostPciPassthruInfo{
		info("0000:3b:00.0", "a100", true),
		info("0000:3c:00.0", "a100", true),
		info("0000:5e:00.0", "", true),
		info("0000:af:00.0", "", false),
	}
	// Gather the cluster's VMs on the one host with devices.
	var refs []types.ManagedObjectReference
	for _, h := range cluster.Host {
		hs := reg.Get(h).(*simulator.HostSystem)
		refs = append(refs, hs.Vm...)
		if h != e.host.Self {
			hs.Vm = nil
		}
	}
	e.host.Vm = refs
	for _, ref := range refs {
		vm := reg.Get(ref).(*simulator.VirtualMachine)
		vm.Runtime.Host = &e.host.Self
		vm.Summary.Runtime.Host = &e.host.Self
		e.powerOff(vm)
		vm.Config.Hardware.MemoryMB = 4096
		// The inventory's default hardware version (the upstream model's VMs are vmx-13).
		vm.Config.Version, vm.Summary.Config.HwVersion = defaultHardwareVersion, defaultHardwareVersion
		vm.Config.MemoryAllocation = &types.ResourceAllocationInfo{Reservation: types.NewInt64(0), Limit: types.NewInt64(-1)}
		e.vms = append(e.vms, vm)
	}
	if len(e.vms) < 2 {
		e.t.Fatalf("want at least 2 VMs on %s, have %d", e.host.Name, len(e.vms))
	}
}

// setMMIO gives a host device the BAR size the inventory's mmioSizeGB would.
func (e *vmEnv) setMMIO(id string, gb int64) {
	setDeviceMMIO(e.m.Map(), e.host.Self, id, gb)
}

func (e *vmEnv) obj(vm *simulator.VirtualMachine) *object.VirtualMachine {
	return object.NewVirtualMachine(e.c, vm.Self)
}

// wait returns the fault a task ended with, or nil; a call error fails the test.
func (e *vmEnv) wait(t *object.Task, err error) types.BaseMethodFault {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
	werr := t.Wait(e.ctx)
	if werr == nil {
		return nil
	}
	var terr task.Error
	if errors.As(werr, &terr) {
		return terr.Fault()
	}
	e.t.Fatal(werr)
	return nil
}

func (e *vmEnv) reconfigure(vm *simulator.VirtualMachine, spec types.VirtualMachineConfigSpec) types.BaseMethodFault {
	return e.wait(e.obj(vm).Reconfigure(e.ctx, spec))
}

func (e *vmEnv) powerOn(vm *simulator.VirtualMachine) types.BaseMethodFault {
	return e.wait(e.obj(vm).PowerOn(e.ctx))
}

func (e *vmEnv) powerOff(vm *simulator.VirtualMachine) {
	e.t.Helper()
	if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOff {
		return
	}
	if f := e.wait(e.obj(vm).PowerOff(e.ctx)); f != nil {
		e.t.Fatalf("power off: %#v", f)
	}
}

// config reads a VM's config over the API, as a client sees it.
func (e *vmEnv) config(vm *simulator.VirtualMachine) *types.VirtualMachineConfigInfo {
	e.t.Helper()
	var o mo.VirtualMachine
	if err := e.obj(vm).Properties(e.ctx, vm.Self, []string{"config"}, &o); err != nil {
		e.t.Fatal(err)
	}
	return o.Config
}

func (e *vmEnv) fullReservation(vm *simulator.VirtualMachine) {
	e.t.Helper()
	if f := e.reconfigure(vm, types.VirtualMachineConfigSpec{MemoryReservationLockedToMax: types.NewBool(true)}); f != nil {
		e.t.Fatalf("reservation: %#v", f)
	}
}

// staticDevice is the backing the operator builds from QueryConfigTarget (docs/design.md,
// "VM side: devices and claims").
func (e *vmEnv) staticDevice(id string) *types.VirtualPCIPassthrough {
	pci := hostPciDevice(e.host, id)
	return &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{
		Key: -1,
		Backing: &types.VirtualPCIPassthroughDeviceBackingInfo{
			Id: id, DeviceId: pciIDHex(pci.DeviceId), SystemId: hostSystemID(e.host), VendorId: pci.VendorId,
		},
	}}
}

func dynamicDevice(vendor, device int32, label string) *types.VirtualPCIPassthrough {
	return &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{
		Key: -1,
		Backing: &types.VirtualPCIPassthroughDynamicBackingInfo{
			AllowedDevice: []types.VirtualPCIPassthroughAllowedDevice{{VendorId: vendor, DeviceId: device}},
			CustomLabel:   label,
		},
	}}
}

func addDevices(devices ...types.BaseVirtualDevice) types.VirtualMachineConfigSpec {
	var spec types.VirtualMachineConfigSpec
	for _, d := range devices {
		spec.DeviceChange = append(spec.DeviceChange, &types.VirtualDeviceConfigSpec{
			Operation: types.VirtualDeviceConfigSpecOperationAdd, Device: d,
		})
	}
	return spec
}

// attach adds devices to a powered-off VM with the full reservation, failing the test on error.
func (e *vmEnv) attach(vm *simulator.VirtualMachine, devices ...types.BaseVirtualDevice) {
	e.t.Helper()
	spec := addDevices(devices...)
	spec.MemoryReservationLockedToMax = types.NewBool(true)
	if f := e.reconfigure(vm, spec); f != nil {
		e.t.Fatalf("attach: %#v", f)
	}
}

func reason(f types.BaseMethodFault) string {
	if g, ok := f.(*types.GenericVmConfigFault); ok {
		return g.Reason
	}
	return ""
}
