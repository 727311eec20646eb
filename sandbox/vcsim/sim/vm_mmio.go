package sim

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// Large-BAR passthrough devices (GPUs whose BARs map about their framebuffer or more) need
// 64-bit MMIO in the VM. Sources: VMware blog "How to Enable Nvidia V100 GPU in Passthrough
// mode on vSphere" (2018-10); Frank Denneman, "vSphere ML Accelerator Spectrum Deep Dive –
// ESXi Host BIOS, VM, and vCenter Settings" (2023-05); Dell KB 000199172 for the failure text.
//   - Without settings a VM gets a 32 GB MMIO region, in which one device may map up to 16 GB.
//   - Beyond that the VM must boot with EFI firmware and have the advanced settings
//     pciPassthru.use64bitMMIO = "TRUE" and pciPassthru.64bitMMIOSizeGB = N, N at least the
//     total BAR size of all its passthrough devices (VMware recommends a power of two).
//   - Otherwise power-on fails: "Module 'DevicePowerOn' power on failed.", and vmware.log says
//     "PCIPassthru: total number of pages needed (N) exceeds limit (M)".
const (
	defaultMMIOGB       = 32 // the VM's MMIO region without 64-bit MMIO settings
	defaultDeviceMMIOGB = 16 // the most one device may map in it
	pagesPerGB          = 1 << 18
	use64bitMMIOKey     = "pciPassthru.use64bitMMIO"
	mmioSizeGBKey       = "pciPassthru.64bitMMIOSizeGB"
)

// The vSphere API does not expose a device's BAR size (HostPciDevice has no such field), so the
// sandbox keeps it here, per registry, host and PCI address, for the power-on rule only. The
// inventory loader fills it from pciDevices[].mmioSizeGB; a device not listed maps 0 GB.
var deviceMMIO sync.Map // *simulator.Registry -> *mmioTable

type mmioTable struct {
	mu sync.RWMutex
	gb map[types.ManagedObjectReference]map[string]int64
}

func mmioTableOf(r *simulator.Registry) *mmioTable {
	v, _ := deviceMMIO.LoadOrStore(r, &mmioTable{gb: map[types.ManagedObjectReference]map[string]int64{}})
	return v.(*mmioTable)
}

// setDeviceMMIO records how many GB of memory (PCI BARs) a host device maps.
func setDeviceMMIO(r *simulator.Registry, host types.ManagedObjectReference, id string, gb int64) {
	t := mmioTableOf(r)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.gb[host] == nil {
		t.gb[host] = map[string]int64{}
	}
	t.gb[host][id] = gb
}

func deviceMMIOGB(r *simulator.Registry, host types.ManagedObjectReference, id string) int64 {
	v, ok := deviceMMIO.Load(r)
	if !ok {
		return 0
	}
	t := v.(*mmioTable)
	t.mu.RLock()
	defer t.mu.RUnlock()
	return t.gb[host][id]
}

func dropDeviceMMIO(r *simulator.Registry) { deviceMMIO.Delete(r) }

// checkMMIO refuses the power-on of a VM whose passthrough devices (their host PCI addresses:
// static ids and the devices picked for Dynamic DirectPath backings) need 64-bit MMIO the VM
// does not have. Devices of at most 16 GB each and 32 GB together need nothing.
func checkMMIO(ctx *simulator.Context, vm *simulator.VirtualMachine, host *simulator.HostSystem, ids []string) types.BaseMethodFault {
	if host == nil {
		return nil
	}
	var total, largest int64
	largestID := ""
	for _, id := range ids {
		gb := deviceMMIOGB(ctx.Map, host.Self, id)
		total += gb
		if gb > largest {
			largest, largestID = gb, id
		}
	}
	if total <= defaultMMIOGB && largest <= defaultDeviceMMIOGB {
		return nil
	}

	efi := vm.Config.Firmware == string(types.GuestOsDescriptorFirmwareTypeEfi)
	use64, use64Set := extraConfigValue(vm, use64bitMMIOKey)
	size, sizeSet := extraConfigValue(vm, mmioSizeGBKey)
	sizeGB, err := strconv.ParseInt(strings.TrimSpace(size), 10, 64)
	if err != nil {
		sizeGB = 0
	}
	on64 := efi && strings.EqualFold(strings.TrimSpace(use64), "TRUE")
	if on64 && sizeGB >= total {
		return nil
	}

	// What ran out: the 64-bit region that is set up, or the default one.
	var cause string
	switch {
	case on64:
		cause = fmt.Sprintf("PCIPassthru: total number of pages needed (%d) exceeds limit (%d)", total*pagesPerGB, sizeGB*pagesPerGB)
	case total > defaultMMIOGB:
		cause = fmt.Sprintf("PCIPassthru: total number of pages needed (%d) exceeds limit (%d)", total*pagesPerGB, int64(defaultMMIOGB)*pagesPerGB)
	default:
		cause = fmt.Sprintf("PCIPassthru: device %s needs %d GB of MMIO, more than the %d GB a device may map without 64-bit MMIO",
			largestID, largest, defaultDeviceMMIOGB)
	}
	// And the first setting that is missing.
	var fix string
	switch {
	case !efi:
		fix = fmt.Sprintf("64-bit MMIO needs EFI firmware (config.firmware is %q)", vm.Config.Firmware)
	case !on64 && !use64Set:
		fix = fmt.Sprintf("%s is not set (64-bit MMIO is off)", use64bitMMIOKey)
	case !on64:
		fix = fmt.Sprintf("%s is %q, not \"TRUE\" (64-bit MMIO is off)", use64bitMMIOKey, use64)
	case !sizeSet:
		fix = fmt.Sprintf("%s is not set; the passthrough devices need %d GB", mmioSizeGBKey, total)
	default:
		fix = fmt.Sprintf("%s is %q; the passthrough devices need %d GB", mmioSizeGBKey, size, total)
	}
	return devicePowerOnFault(cause + "; " + fix)
}

// devicePowerOnFault is how vCenter reports a VMX module failing at power-on: the module line
// first, then the module's own explanation (Dell KB 000199172).
func devicePowerOnFault(detail string) *types.GenericVmConfigFault {
	const module = "Module 'DevicePowerOn' power on failed."
	f := &types.GenericVmConfigFault{Reason: module + "\n" + detail}
	f.FaultMessage = []types.LocalizableMessage{
		{Key: "msg.moduletable.powerOnFailed", Message: module},
		{Key: "msg.pciPassthru.mmio", Message: detail},
	}
	return f
}

// extraConfigValue reads one advanced setting (config.extraConfig) as a string.
func extraConfigValue(vm *simulator.VirtualMachine, key string) (string, bool) {
	for _, o := range vm.Config.ExtraConfig {
		if ov := o.GetOptionValue(); ov != nil && ov.Key == key {
			if ov.Value == nil {
				return "", true
			}
			return fmt.Sprint(ov.Value), true
		}
	}
	return "", false
}
