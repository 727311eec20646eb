package sim

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// configureHost gives a simulator host (cloned from the upstream ESXi template) the identity,
// hardware, capability, network and passthrough state of its inventory entry. Runs at load
// time, before the server accepts connections, so plain field writes are safe.
func (s *Simulator) configureHost(h *simulator.HostSystem, spec *Host) {
	v, _ := parseVersion(spec.Version)

	// Product: config.product and summary.config.product. The template's summary points at a
	// package-level AboutInfo shared by every host; give each host its own.
	p := &h.Config.Product
	p.Version = v.String()
	p.Build = spec.Build
	if p.Build == "" {
		p.Build = v.build()
	}
	p.FullName = fmt.Sprintf("VMware ESXi %s build-%s", p.Version, p.Build)
	p.ApiVersion = v.apiVersion()
	if spec.APIVersion != "" {
		p.ApiVersion = spec.APIVersion
	}
	p.LicenseProductVersion = fmt.Sprintf("%d.0", v.major)
	h.Summary.Config.Product = p

	hw := *h.Hardware
	hw.SystemInfo.Vendor = orDefault(spec.SystemVendor, "Cisco Systems Inc")
	hw.SystemInfo.Model = orDefault(spec.SystemModel, "UCSC-C240-M5SX")
	hw.PciDevice = hostPciDevices(spec)
	h.Hardware = &hw
	summaryHW := *h.Summary.Hardware
	summaryHW.Vendor, summaryHW.Model = hw.SystemInfo.Vendor, hw.SystemInfo.Model
	h.Summary.Hardware = &summaryHW

	h.Capability = hostCapability(h.Capability, v, spec)
	h.Config.Network = hostNetwork(h.Config.Network, spec)
	h.Config.StorageDevice = hostStorage(h.Config.StorageDevice, spec)

	pts := newPciPassthruSystem(h, spec)
	ref := s.Map.Put(pts).Reference()
	h.ConfigManager.PciPassthruSystem = &ref
	h.Config.PciPassthruInfo = pts.infoCopy()
	// enabled != active means a reboot is pending: the orange arrow (Broadcom KB 309986).
	h.Summary.RebootRequired = pts.rebootRequired()
	s.passthru[h.Self] = pts
	for _, d := range spec.PCIDevices {
		setDeviceMMIO(s.Map, h.Self, d.Address, d.MMIOSizeGB)
	}

	s.hostManagers(h)
	s.shareHostTruth(h)
	completeOptionDefs(h.Config.OptionDef)

	h.Runtime.InMaintenanceMode = spec.InMaintenanceMode
	if spec.ConnectionState != "" {
		h.Runtime.ConnectionState = types.HostSystemConnectionState(spec.ConnectionState)
	}
	s.hosts[h.Name] = h
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// hostPciDevices is hardware.pciDevice: the listed devices plus any NIC or HBA whose PCI
// function was not listed, because on a real host every function appears there.
func hostPciDevices(spec *Host) []types.HostPciDevice {
	var out []types.HostPciDevice
	seen := map[string]bool{}
	for _, d := range spec.PCIDevices {
		out = append(out, pciDevice(d))
		seen[d.Address] = true
	}
	for _, n := range spec.NICs {
		if !seen[n.PCI] && pciAddress.MatchString(n.PCI) {
			out = append(out, pciDevice(implicitDevice(n.PCI, "0200", "8086", "1572", "Ethernet Controller X710 for 10GbE SFP+", "Intel(R)")))
			seen[n.PCI] = true
		}
	}
	for _, a := range spec.HBAs {
		if !seen[a.PCI] && pciAddress.MatchString(a.PCI) {
			out = append(out, pciDevice(implicitDevice(a.PCI, "0104", "1000", "0097", orDefault(a.Model, "SAS3008 PCI-Express Fusion-MPT SAS-3"), "Broadcom / LSI")))
			seen[a.PCI] = true
		}
	}
	return out
}

func implicitDevice(addr, class, vendor, device, name, vendorName string) PCIDevice {
	return PCIDevice{Address: addr, ClassID: class, VendorID: vendor, DeviceID: device, Name: name, VendorName: vendorName}
}

func pciDevice(d PCIDevice) types.HostPciDevice {
	var bus, slot, fn uint
	var domain uint
	_, _ = fmt.Sscanf(d.Address, "%x:%x:%x.%x", &domain, &bus, &slot, &fn)
	return types.HostPciDevice{
		Id:       d.Address,
		ClassId:  mustHex16(d.ClassID),
		Bus:      byte(bus),
		Slot:     byte(slot),
		Function: byte(fn),
		// vendorId/deviceId are xsd:short on the wire: ids above 0x7fff are negative
		// (WSDL; govmomi #2248).
		VendorId:     mustHex16(d.VendorID),
		DeviceId:     mustHex16(d.DeviceID),
		SubVendorId:  mustHex16(d.SubVendorID),
		SubDeviceId:  mustHex16(d.SubDeviceID),
		VendorName:   d.VendorName,
		DeviceName:   d.Name,
		ParentBridge: "",
	}
}

// hostCapability copies the template capability and sets the passthrough-related flags.
func hostCapability(tmpl *types.HostCapability, v esxiVersion, spec *Host) *types.HostCapability {
	c := *tmpl
	// deviceRebindWithoutRebootSupported exists since API 7.0 (vSphere API reference); older
	// hosts leave it unset, which clients must read as false.
	c.DeviceRebindWithoutRebootSupported = nil
	if v.atLeast(7, 0, 0) {
		c.DeviceRebindWithoutRebootSupported = types.NewBool(spec.DeviceRebindWithoutReboot)
	}
	// VMDirectPath Gen2 support and the reasons it is missing (vSphere API reference).
	c.VmDirectPathGen2Supported = types.NewBool(spec.Gen2.Supported)
	c.VmDirectPathGen2UnsupportedReason = nil
	c.VmDirectPathGen2UnsupportedReasonExtended = ""
	if !spec.Gen2.Supported {
		c.VmDirectPathGen2UnsupportedReason = append([]string(nil), spec.Gen2.UnsupportedReasons...)
		c.VmDirectPathGen2UnsupportedReasonExtended = spec.Gen2.UnsupportedReasonExtended
	}
	return &c
}

// hostStorage replaces the template's HBAs with the inventory's, when it lists any: a storage
// HBA's PCI function is in use by ESXi (the boot device hangs off it).
func hostStorage(tmpl *types.HostStorageDeviceInfo, spec *Host) *types.HostStorageDeviceInfo {
	s := *tmpl
	if len(spec.HBAs) == 0 {
		return &s
	}
	s.HostBusAdapter = nil
	for _, a := range spec.HBAs {
		s.HostBusAdapter = append(s.HostBusAdapter, &types.HostBlockHba{
			HostHostBusAdapter: types.HostHostBusAdapter{
				Key:    "key-vim.host.BlockHba-" + a.Device,
				Device: a.Device,
				Pci:    a.PCI,
				Model:  orDefault(a.Model, "SAS3008 PCI-Express Fusion-MPT SAS-3"),
				Driver: "lsi_msgpt3",
				Status: "online",
			},
		})
	}
	return &s
}
