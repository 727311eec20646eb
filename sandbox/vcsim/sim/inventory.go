package sim

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/vim25/types"
	"gopkg.in/yaml.v3"
)

// Inventory is the YAML description of a vCenter inventory: datacenters holding clusters,
// standalone hosts, distributed switches and VMs. See inventory/default.yaml for a documented
// example; the loader (inventory_load.go) turns it into simulator objects.
type Inventory struct {
	Datacenters []Datacenter `yaml:"datacenters"`
}

type Datacenter struct {
	Name     string    `yaml:"name"`
	DVS      []DVS     `yaml:"dvs"`
	Clusters []Cluster `yaml:"clusters"`
	Hosts    []Host    `yaml:"hosts"` // standalone hosts
	VMs      []VM      `yaml:"vms"`
}

type DVS struct {
	Name       string      `yaml:"name"`
	Portgroups []Portgroup `yaml:"portgroups"`
}

type Portgroup struct {
	Name string `yaml:"name"`
	// VMDirectPathGen2Allowed is DVPortSetting.vmDirectPathGen2Allowed (vSphere API reference).
	VMDirectPathGen2Allowed bool `yaml:"vmDirectPathGen2Allowed"`
}

type Cluster struct {
	Name        string       `yaml:"name"`
	HA          HA           `yaml:"ha"`
	DRS         DRS          `yaml:"drs"`
	VMOverrides []VMOverride `yaml:"vmOverrides"`
	Hosts       []Host       `yaml:"hosts"`
}

type HA struct {
	Enabled bool `yaml:"enabled"`
	// RestartPriority is the cluster default (disabled|lowest|low|medium|high|highest).
	RestartPriority string `yaml:"restartPriority"`
}

type DRS struct {
	Enabled bool `yaml:"enabled"`
	// AutomationLevel is manual|partiallyAutomated|fullyAutomated.
	AutomationLevel string `yaml:"automationLevel"`
}

// VMOverride is a per-VM cluster setting: ClusterDrsVmConfigInfo and ClusterDasVmConfigInfo.
type VMOverride struct {
	VM              string `yaml:"vm"`
	DRSEnabled      *bool  `yaml:"drsEnabled"`
	DRSBehavior     string `yaml:"drsBehavior"`
	RestartPriority string `yaml:"restartPriority"`
}

type Host struct {
	Name    string `yaml:"name"`
	Version string `yaml:"version"` // ESXi version, e.g. "7.0.3"
	Build   string `yaml:"build"`   // optional; a known build of Version by default
	// APIVersion overrides the apiVersion derived from Version.
	APIVersion string `yaml:"apiVersion"`
	// IOMMU false models VT-d/AMD-Vi off in the BIOS: no device is passthrough capable.
	IOMMU *bool `yaml:"iommu"`
	// DeviceRebindWithoutReboot is HostCapability.deviceRebindWithoutRebootSupported (7.0+).
	DeviceRebindWithoutReboot bool        `yaml:"deviceRebindWithoutReboot"`
	Gen2                      Gen2        `yaml:"gen2"`
	SystemVendor              string      `yaml:"systemVendor"`
	SystemModel               string      `yaml:"systemModel"`
	InMaintenanceMode         bool        `yaml:"inMaintenanceMode"`
	ConnectionState           string      `yaml:"connectionState"` // connected (default) | disconnected | notResponding
	PCIDevices                []PCIDevice `yaml:"pciDevices"`
	NICs                      []PNIC      `yaml:"nics"`
	HBAs                      []HBA       `yaml:"hbas"`
	VMKernelNICs              []VMKNIC    `yaml:"vmkernelNics"`
}

// Gen2 is VMDirectPath Gen2 support: HostCapability.vmDirectPathGen2Supported and its
// unsupported reasons (vSphere API reference).
type Gen2 struct {
	Supported                 bool     `yaml:"supported"`
	UnsupportedReasons        []string `yaml:"unsupportedReasons"`
	UnsupportedReasonExtended string   `yaml:"unsupportedReasonExtended"`
}

type PCIDevice struct {
	Address         string `yaml:"address"`  // "0000:3b:00.0"
	VendorID        string `yaml:"vendorId"` // hex, e.g. "10de"
	DeviceID        string `yaml:"deviceId"`
	SubVendorID     string `yaml:"subVendorId"`
	SubDeviceID     string `yaml:"subDeviceId"`
	ClassID         string `yaml:"classId"` // hex, e.g. "0302" (3D controller)
	Name            string `yaml:"name"`
	VendorName      string `yaml:"vendorName"`
	Capable         *bool  `yaml:"capable"` // default: true when the host has an IOMMU
	Enabled         bool   `yaml:"enabled"`
	Active          bool   `yaml:"active"`
	HardwareLabel   string `yaml:"hardwareLabel"`
	DependentDevice string `yaml:"dependentDevice"`
	// MMIOSizeGB is the memory the device maps (its PCI BARs), in GB; 0: small BARs. The vSphere
	// API doesn't expose it, so it only drives the 64-bit MMIO power-on rule (vm_mmio.go).
	MMIOSizeGB int64 `yaml:"mmioSizeGB"`
}

type PNIC struct {
	Device string `yaml:"device"` // vmnic0
	PCI    string `yaml:"pci"`
}

type HBA struct {
	Device string `yaml:"device"` // vmhba0
	PCI    string `yaml:"pci"`
	Model  string `yaml:"model"`
}

// VMKNIC is a vmkernel NIC on a standard vSwitch whose uplink is PNIC: that NIC is in use by ESXi.
type VMKNIC struct {
	Device    string `yaml:"device"` // vmk0
	PNIC      string `yaml:"pnic"`
	VSwitch   string `yaml:"vswitch"`   // default vSwitch0
	Portgroup string `yaml:"portgroup"` // default "Management Network"
	IP        string `yaml:"ip"`
}

type VM struct {
	Name                         string        `yaml:"name"`
	Host                         string        `yaml:"host"`
	Folder                       string        `yaml:"folder,omitempty"`       // under the DC's vm folder: "ml-team/prod" (created if missing)
	ResourcePool                 string        `yaml:"resourcePool,omitempty"` // under the host's root pool: "ml-team/batch" (created if missing)
	PowerState                   string        `yaml:"powerState"`             // poweredOn | poweredOff (default) | suspended
	CPUs                         int32         `yaml:"cpus"`
	MemoryMB                     int64         `yaml:"memoryMB"`
	MemoryReservationMB          int64         `yaml:"memoryReservationMB"`
	MemoryReservationLockedToMax bool          `yaml:"memoryReservationLockedToMax"`
	HardwareVersion              string        `yaml:"hardwareVersion"` // vmx-19
	Firmware                     string        `yaml:"firmware"`        // bios (default) | efi: config.firmware
	GuestID                      string        `yaml:"guestId"`
	CPUHotAdd                    bool          `yaml:"cpuHotAdd"`
	MemoryHotAdd                 bool          `yaml:"memoryHotAdd"`
	NestedHV                     bool          `yaml:"nestedHV"`
	FT                           string        `yaml:"ft"` // "" | primary | secondary
	Snapshots                    int           `yaml:"snapshots"`
	NICs                         []VMNIC       `yaml:"nics"`
	PCIPassthrough               []VMPCIDevice `yaml:"pciPassthrough"`

	// ExtraConfig is config.extraConfig, the VM's advanced settings (e.g. pciPassthru.use64bitMMIO).
	ExtraConfig map[string]string `yaml:"extraConfig"`
}

type VMNIC struct {
	Type                    string `yaml:"type"`    // vmxnet3 (default) | e1000 | e1000e
	Network                 string `yaml:"network"` // "VM Network" or a DVS port group name
	UptCompatibilityEnabled bool   `yaml:"uptCompatibilityEnabled"`
}

// VMPCIDevice is an existing passthrough device: static (Address on the VM's host) or
// dynamic (VendorID/DeviceID/Label).
type VMPCIDevice struct {
	Address  string `yaml:"address"`
	VendorID string `yaml:"vendorId"`
	DeviceID string `yaml:"deviceId"`
	Label    string `yaml:"label"`
}

// LoadInventoryFile reads and validates an inventory file.
func LoadInventoryFile(path string) (*Inventory, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseInventory(data)
}

// ParseInventory decodes YAML strictly (unknown keys are errors: a typo must not silently
// produce a different inventory) and validates it.
func ParseInventory(data []byte) (*Inventory, error) {
	var inv Inventory
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&inv); err != nil {
		return nil, fmt.Errorf("inventory: %w", err)
	}
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	return &inv, nil
}

var pciAddress = regexp.MustCompile(`^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$`)

// Validate checks names are unique and references resolve, so loading can't half-succeed.
func (inv *Inventory) Validate() error {
	hosts := map[string]*Host{}
	for i := range inv.Datacenters {
		dc := &inv.Datacenters[i]
		for _, h := range dc.allHosts() {
			if hosts[h.Name] != nil {
				return fmt.Errorf("inventory: duplicate host %q", h.Name)
			}
			hosts[h.Name] = h
			if err := h.validate(); err != nil {
				return err
			}
		}
	}
	vms := map[string]bool{}
	for _, dc := range inv.Datacenters {
		for _, vm := range dc.VMs {
			if vms[vm.Name] {
				return fmt.Errorf("inventory: duplicate VM %q", vm.Name)
			}
			vms[vm.Name] = true
			h := hosts[vm.Host]
			if h == nil {
				return fmt.Errorf("inventory: VM %q: unknown host %q", vm.Name, vm.Host)
			}
			for _, p := range []struct{ key, path, under string }{
				{"folder", vm.Folder, "the datacenter's vm folder"},
				{"resourcePool", vm.ResourcePool, "the root resource pool of the host's cluster or standalone host"},
			} {
				if !validPath(p.path) {
					return fmt.Errorf("inventory: VM %q: bad %s %q: want names separated by \"/\", relative to %s (e.g. ml-team/prod)", vm.Name, p.key, p.path, p.under)
				}
			}
			for _, d := range vm.PCIPassthrough {
				if d.Address != "" && h.device(d.Address) == nil {
					return fmt.Errorf("inventory: VM %q: host %q has no PCI device %s", vm.Name, vm.Host, d.Address)
				}
			}
			if err := vm.validate(); err != nil {
				return err
			}
		}
	}
	return nil
}

// validate checks a VM's own settings: firmware, hardware version, advanced settings.
func (vm *VM) validate() error {
	switch vm.Firmware {
	case "", string(types.GuestOsDescriptorFirmwareTypeBios), string(types.GuestOsDescriptorFirmwareTypeEfi):
	default:
		return fmt.Errorf("inventory: VM %q: bad firmware %q (want bios or efi)", vm.Name, vm.Firmware)
	}
	hw, err := types.ParseHardwareVersion(orDefault(vm.HardwareVersion, defaultHardwareVersion))
	if err != nil {
		return fmt.Errorf("inventory: VM %q: bad hardwareVersion %q (want e.g. vmx-19)", vm.Name, vm.HardwareVersion)
	}
	for _, d := range vm.PCIPassthrough {
		// Dynamic DirectPath I/O needs virtual hardware 17 (vSphere 7.0), as at ReconfigVM_Task.
		if d.Address == "" && hw < dynamicPassthroughMinVersion {
			return fmt.Errorf("inventory: VM %q: a dynamic pciPassthrough device needs hardwareVersion %s or later, not %s",
				vm.Name, dynamicPassthroughMinVersion, hw)
		}
	}
	for k, v := range vm.ExtraConfig {
		// vSphere removes a key set to "": an empty value can't be stored.
		if strings.TrimSpace(k) == "" || v == "" {
			return fmt.Errorf("inventory: VM %q: extraConfig %q: want a key and a non-empty value", vm.Name, k)
		}
	}
	return nil
}

func (h *Host) validate() error {
	if _, err := parseVersion(h.Version); err != nil {
		return fmt.Errorf("inventory: host %q: %w", h.Name, err)
	}
	seen := map[string]bool{}
	for _, d := range h.PCIDevices {
		if !pciAddress.MatchString(d.Address) {
			return fmt.Errorf("inventory: host %q: bad PCI address %q (want 0000:3b:00.0)", h.Name, d.Address)
		}
		if seen[d.Address] {
			return fmt.Errorf("inventory: host %q: duplicate PCI device %s", h.Name, d.Address)
		}
		seen[d.Address] = true
		if d.MMIOSizeGB < 0 {
			return fmt.Errorf("inventory: host %q device %s: mmioSizeGB %d is negative", h.Name, d.Address, d.MMIOSizeGB)
		}
		for _, id := range []string{d.VendorID, d.DeviceID, d.SubVendorID, d.SubDeviceID, d.ClassID} {
			if _, err := parseHex16(id); err != nil {
				return fmt.Errorf("inventory: host %q device %s: %w", h.Name, d.Address, err)
			}
		}
	}
	for _, d := range h.PCIDevices {
		if d.DependentDevice != "" && !seen[d.DependentDevice] {
			return fmt.Errorf("inventory: host %q device %s: unknown dependentDevice %s", h.Name, d.Address, d.DependentDevice)
		}
	}
	for _, v := range h.VMKernelNICs {
		if h.pnic(v.PNIC) == nil {
			return fmt.Errorf("inventory: host %q: vmkernel NIC %s on unknown pnic %q", h.Name, v.Device, v.PNIC)
		}
	}
	return nil
}

// validPath accepts "" and relative paths of non-empty names: "a", "a/b".
func validPath(p string) bool {
	if p == "" {
		return true
	}
	for _, name := range strings.Split(p, "/") {
		if strings.TrimSpace(name) == "" {
			return false
		}
	}
	return true
}

func (dc *Datacenter) allHosts() []*Host {
	var out []*Host
	for i := range dc.Clusters {
		for j := range dc.Clusters[i].Hosts {
			out = append(out, &dc.Clusters[i].Hosts[j])
		}
	}
	for i := range dc.Hosts {
		out = append(out, &dc.Hosts[i])
	}
	return out
}

func (h *Host) device(addr string) *PCIDevice {
	for i := range h.PCIDevices {
		if h.PCIDevices[i].Address == addr {
			return &h.PCIDevices[i]
		}
	}
	return nil
}

func (h *Host) pnic(name string) *PNIC {
	for i := range h.NICs {
		if h.NICs[i].Device == name {
			return &h.NICs[i]
		}
	}
	return nil
}

func (h *Host) hasIOMMU() bool { return h.IOMMU == nil || *h.IOMMU }

// parseHex16 parses a 16-bit hex id ("10de", "0x10de"); empty means 0.
func parseHex16(s string) (uint16, error) {
	if s == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.ToLower(s), "0x"), 16, 16)
	if err != nil {
		return 0, fmt.Errorf("bad 16-bit hex id %q", s)
	}
	return uint16(v), nil
}

// wireInt16 converts a PCI id to its WSDL form: the API types vendorId/deviceId as xsd:short,
// so ESXi sends ids above 0x7fff as their two's complement, e.g. 0x8086 -> -32634
// (WSDL; govmomi #2248). Clients mask with & 0xFFFF.
func wireInt16(v uint16) int16 { return int16(v) }

func mustHex16(s string) int16 {
	v, _ := parseHex16(s) // validated by Inventory.Validate
	return wireInt16(v)
}
