package sim

import (
	"fmt"
	"sort"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// vm creates one VM through CreateVM_Task in its folder and pool, then snapshots, FT and power state.
func (b *builder) vm(spec *VM, at placement) error {
	host := b.sim.hosts[spec.Host] // place checked it
	config, err := b.vmConfigSpec(host, spec)
	if err != nil {
		return err
	}
	hostObj := object.NewHostSystem(b.client, host.Self)
	ref, err := b.waitRef(at.folder.CreateVM(b.ctx, config, at.pool, hostObj))
	if err != nil {
		return err
	}
	simVM := b.sim.Map.Get(ref).(*simulator.VirtualMachine)
	bg := b.sim.newBG()
	b.sim.Map.WithLock(bg, simVM, func() { settlePassthroughDevices(bg, simVM) })
	vm := object.NewVirtualMachine(b.client, ref)
	for i := 0; i < spec.Snapshots; i++ {
		if _, err := b.waitRef(vm.CreateSnapshot(b.ctx, fmt.Sprintf("snapshot-%d", i+1), "", false, false)); err != nil {
			return fmt.Errorf("snapshot: %w", err)
		}
	}
	switch spec.PowerState {
	case "", string(types.VirtualMachinePowerStatePoweredOff):
	case string(types.VirtualMachinePowerStatePoweredOn), string(types.VirtualMachinePowerStateSuspended):
		if _, err := b.waitRef(vm.PowerOn(b.ctx)); err != nil {
			return fmt.Errorf("power on: %w", err)
		}
		if spec.PowerState == string(types.VirtualMachinePowerStateSuspended) {
			if _, err := b.waitRef(vm.Suspend(b.ctx)); err != nil {
				return fmt.Errorf("suspend: %w", err)
			}
		}
	default:
		return fmt.Errorf("bad powerState %q", spec.PowerState)
	}
	if spec.FT != "" {
		b.faultTolerance(b.sim.Map.Get(ref).(*simulator.VirtualMachine), spec)
	}
	return nil
}

func (b *builder) vmConfigSpec(host *simulator.HostSystem, spec *VM) (types.VirtualMachineConfigSpec, error) {
	memory := spec.MemoryMB
	if memory == 0 {
		memory = 4096
	}
	cpus := spec.CPUs
	if cpus == 0 {
		cpus = 2
	}
	reservation := spec.MemoryReservationMB
	if spec.MemoryReservationLockedToMax {
		reservation = memory
	}
	config := types.VirtualMachineConfigSpec{
		Name:                         spec.Name,
		GuestId:                      orDefault(spec.GuestID, string(types.VirtualMachineGuestOsIdentifierOtherGuest64)),
		Version:                      orDefault(spec.HardwareVersion, defaultHardwareVersion),
		Firmware:                     orDefault(spec.Firmware, string(types.GuestOsDescriptorFirmwareTypeBios)),
		ExtraConfig:                  extraConfig(spec.ExtraConfig),
		NumCPUs:                      cpus,
		MemoryMB:                     memory,
		MemoryAllocation:             &types.ResourceAllocationInfo{Reservation: types.NewInt64(reservation)},
		MemoryReservationLockedToMax: types.NewBool(spec.MemoryReservationLockedToMax),
		CpuHotAddEnabled:             types.NewBool(spec.CPUHotAdd),
		MemoryHotAddEnabled:          types.NewBool(spec.MemoryHotAdd),
		NestedHVEnabled:              types.NewBool(spec.NestedHV),
		Files:                        &types.VirtualMachineFileInfo{VmPathName: "[" + datastoreName + "]"},
	}
	var devices object.VirtualDeviceList
	for i, n := range spec.NICs {
		nic, err := b.nic(host, n)
		if err != nil {
			return config, err
		}
		// vCenter labels adapters "Network adapter 1", 2, ... (what the vSphere Client shows and
		// what networkDirectPath[].adapter names); upstream's CreateVM would say "ethernet-N".
		nic.GetVirtualDevice().DeviceInfo = &types.Description{Label: fmt.Sprintf("Network adapter %d", i+1), Summary: orDefault(n.Network, "VM Network")}
		devices = append(devices, nic)
	}
	for i, d := range spec.PCIPassthrough {
		devices = append(devices, b.passthroughDevice(host, d, i))
	}
	change, err := devices.ConfigSpec(types.VirtualDeviceConfigSpecOperationAdd)
	if err != nil {
		return config, err
	}
	config.DeviceChange = change
	return config, nil
}

// defaultHardwareVersion is the virtual hardware of inventory VMs that name none.
const defaultHardwareVersion = "vmx-19"

// extraConfig is config.extraConfig in key order, so the inventory loads the same every time.
func extraConfig(m map[string]string) []types.BaseOptionValue {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var out []types.BaseOptionValue
	for _, k := range keys {
		out = append(out, &types.OptionValue{Key: k, Value: m[k]})
	}
	return out
}

func (b *builder) nic(host *simulator.HostSystem, n VMNIC) (types.BaseVirtualDevice, error) {
	network := orDefault(n.Network, "VM Network")
	var backing types.BaseVirtualDeviceBackingInfo
	if pg := b.sim.portgroup(network); pg != nil {
		dvs := b.sim.Map.Get(*pg.Config.DistributedVirtualSwitch).(*simulator.DistributedVirtualSwitch)
		backing = &types.VirtualEthernetCardDistributedVirtualPortBackingInfo{
			Port: types.DistributedVirtualSwitchPortConnection{SwitchUuid: dvs.Uuid, PortgroupKey: pg.Key},
		}
	} else {
		var ref *types.ManagedObjectReference
		for i := range host.Network {
			if e, ok := b.sim.Map.Get(host.Network[i]).(mo.Entity); ok && e.Entity().Name == network {
				ref = &host.Network[i]
			}
		}
		if ref == nil {
			return nil, fmt.Errorf("unknown network %q", network)
		}
		backing = &types.VirtualEthernetCardNetworkBackingInfo{
			VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: network},
			Network:                        ref,
		}
	}
	card, err := object.EthernetCardTypes().CreateEthernetCard(orDefault(n.Type, "vmxnet3"), backing)
	if err != nil {
		return nil, err
	}
	if n.UptCompatibilityEnabled {
		// VirtualEthernetCard.uptCompatibilityEnabled: DirectPath Gen2 on vmxnet3 (vSphere API reference).
		card.(types.BaseVirtualEthernetCard).GetVirtualEthernetCard().UptCompatibilityEnabled = types.NewBool(true)
	}
	return card, nil
}

// passthroughDevice is the VM's n-th existing DirectPath device, keyed and labelled as vCenter
// does (key 13000+n, "PCI device n"; upstream would make it key 202, "pcipassthrough-202"); the
// PCI controller slot is given after CreateVM (settlePassthroughDevices). The static backing
// carries the device id as lower-case hex: a decimal string makes power-on fail (govmomi
// #2248/#2249).
func (b *builder) passthroughDevice(host *simulator.HostSystem, d VMPCIDevice, n int) types.BaseVirtualDevice {
	dev := &types.VirtualPCIPassthrough{VirtualDevice: types.VirtualDevice{
		Key:        int32(pciPassthroughKeyBase + n),
		DeviceInfo: &types.Description{Label: fmt.Sprintf("PCI device %d", n), Summary: "Dynamic DirectPath I/O"},
	}}
	if d.Address != "" {
		dev.DeviceInfo.GetDescription().Summary = d.Address
		var hd types.HostPciDevice
		for _, p := range host.Hardware.PciDevice {
			if p.Id == d.Address {
				hd = p
			}
		}
		dev.Backing = &types.VirtualPCIPassthroughDeviceBackingInfo{
			VirtualDeviceDeviceBackingInfo: types.VirtualDeviceDeviceBackingInfo{DeviceName: hd.DeviceName},
			Id:                             d.Address,
			DeviceId:                       fmt.Sprintf("%x", uint16(hd.DeviceId)),
			SystemId:                       host.Hardware.SystemInfo.Uuid,
			VendorId:                       hd.VendorId,
		}
		return dev
	}
	dev.Backing = &types.VirtualPCIPassthroughDynamicBackingInfo{
		AllowedDevice: []types.VirtualPCIPassthroughAllowedDevice{{
			VendorId: int32(mustHex16(d.VendorID)),
			DeviceId: int32(mustHex16(d.DeviceID)),
		}},
		CustomLabel: d.Label,
	}
	return dev
}

// faultTolerance sets config.ftInfo, which no simulator API creates (FT needs two hosts).
func (b *builder) faultTolerance(vm *simulator.VirtualMachine, spec *VM) {
	info := types.FaultToleranceConfigInfo{
		InstanceUuids: []string{vm.Config.InstanceUuid, "ft-" + vm.Config.InstanceUuid},
		ConfigPaths:   []string{vm.Config.Files.VmPathName},
	}
	if spec.FT == "secondary" {
		info.Role = 2
		vm.Config.FtInfo = &types.FaultToleranceSecondaryConfigInfo{FaultToleranceConfigInfo: info, PrimaryVM: vm.Self}
	} else {
		info.Role = 1
		vm.Config.FtInfo = &types.FaultTolerancePrimaryConfigInfo{FaultToleranceConfigInfo: info}
	}
	vm.Runtime.FaultToleranceState = types.VirtualMachineFaultToleranceStateEnabled
	if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
		vm.Runtime.FaultToleranceState = types.VirtualMachineFaultToleranceStateRunning
	}
	vm.Summary.Runtime.FaultToleranceState = vm.Runtime.FaultToleranceState
}

func (s *Simulator) portgroup(name string) *simulator.DistributedVirtualPortgroup {
	for _, e := range s.Map.All("DistributedVirtualPortgroup") {
		if pg := e.(*simulator.DistributedVirtualPortgroup); pg.Name == name {
			return pg
		}
	}
	return nil
}
