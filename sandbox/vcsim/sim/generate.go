package sim

import (
	"fmt"

	"github.com/vmware/govmomi/vim25/types"
	"gopkg.in/yaml.v3"
)

// GenerateOptions size a synthetic inventory for benchmarks.
type GenerateOptions struct {
	Hosts          int // total hosts, spread over Clusters
	DevicesPerHost int // GPUs per host (A100/T4 alternating)
	VMs            int // VMs spread round-robin over the hosts
	Clusters       int
	Folders        int // team folders team-01.. the VMs are spread over round-robin; 0: the root vm folder
}

// Generate builds a large, regular inventory: every host has DevicesPerHost capable GPUs (none
// enabled), one NIC carrying vmk0 and a boot HBA; VMs are powered off, without snapshots, hot
// add, nested HV or FT. Clusters have HA on and DRS fully automated, as GPU clusters usually
// do; the operator counts both as feature conflicts for a VM with a passthrough device
// (docs/design.md, "VM side: feature conflicts"), so a benchmark of the attach path alone turns
// them off in the file (bench/inventory.py does).
func Generate(o GenerateOptions) *Inventory {
	if o.Clusters <= 0 {
		o.Clusters = 1
	}
	versions := []string{"7.0.3", "8.0.2", "8.0.3"}
	gpus := []PCIDevice{
		{VendorID: "10de", DeviceID: "20b5", ClassID: "0302", Name: "GA100 [A100 PCIe 80GB]", VendorName: "NVIDIA Corporation", MMIOSizeGB: 128},
		{VendorID: "10de", DeviceID: "1eb8", ClassID: "0302", Name: "TU104GL [Tesla T4]", VendorName: "NVIDIA Corporation"},
	}
	dc := Datacenter{Name: "DC1"}
	for c := 0; c < o.Clusters; c++ {
		dc.Clusters = append(dc.Clusters, Cluster{
			Name: fmt.Sprintf("Cluster-%02d", c+1),
			HA:   HA{Enabled: true, RestartPriority: "medium"},
			DRS:  DRS{Enabled: true, AutomationLevel: "fullyAutomated"},
		})
	}
	var names []string
	for i := 0; i < o.Hosts; i++ {
		h := Host{
			Name:                      fmt.Sprintf("esx-%04d.bench.local", i+1),
			Version:                   versions[i%len(versions)],
			DeviceRebindWithoutReboot: i%2 == 0,
			NICs:                      []PNIC{{Device: "vmnic0", PCI: "0000:18:00.0"}},
			HBAs:                      []HBA{{Device: "vmhba0", PCI: "0000:00:17.0"}},
			VMKernelNICs:              []VMKNIC{{Device: "vmk0", PNIC: "vmnic0"}},
		}
		for d := 0; d < o.DevicesPerHost; d++ {
			dev := gpus[d%len(gpus)]
			// Buses 0x20.. upwards, one device per bus, as on a multi-GPU server.
			dev.Address = fmt.Sprintf("0000:%02x:00.0", 0x20+d)
			h.PCIDevices = append(h.PCIDevices, dev)
		}
		c := &dc.Clusters[i%o.Clusters]
		c.Hosts = append(c.Hosts, h)
		names = append(names, h.Name)
	}
	for i := 0; i < o.VMs && len(names) > 0; i++ {
		vm := VM{
			Name:     fmt.Sprintf("vm-%05d", i+1),
			Host:     names[i%len(names)],
			MemoryMB: 4096,
			// EFI, as GPU VMs are: an A100 (128 GB of BARs) powers on only with it.
			Firmware: string(types.GuestOsDescriptorFirmwareTypeEfi),
			NICs:     []VMNIC{{Type: "vmxnet3", Network: "VM Network"}},
		}
		if o.Folders > 0 {
			vm.Folder = fmt.Sprintf("team-%02d", i%o.Folders+1)
		}
		dc.VMs = append(dc.VMs, vm)
	}
	return &Inventory{Datacenters: []Datacenter{dc}}
}

// YAML renders an inventory in the file format LoadInventoryFile reads.
func (inv *Inventory) YAML() ([]byte, error) { return yaml.Marshal(inv) }
