package sim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// QueryConfigTarget adds what the upstream simulator leaves out for DirectPath I/O
// (vSphere API reference, ConfigTarget):
//   - pciPassthrough: one VirtualMachinePciPassthroughInfo{name, pciDevice, systemId} per
//     ACTIVE passthrough device (HostPciPassthruInfo.passthruActive) of the named host, or of
//     every host of the compute resource when no host is named;
//   - dynamicPassthrough: one VirtualMachineDynamicPassthroughInfo per distinct vendor, device
//     and hardware label among those devices, on hosts of 7.0 and later (Dynamic DirectPath).
func (b *passthroughEnvBrowser) QueryConfigTarget(ctx *simulator.Context, req *types.QueryConfigTarget) soap.HasFault {
	res := b.EnvironmentBrowser.QueryConfigTarget(ctx, req)
	body, ok := res.(*methods.QueryConfigTargetBody)
	if !ok || body.Res == nil || body.Res.Returnval == nil {
		return res
	}
	target := *body.Res.Returnval // a copy: the upstream may return a shared, preset target
	target.PciPassthrough = nil
	target.DynamicPassthrough = nil
	type dynKey struct {
		vendor, device int32
		label          string
	}
	seenDyn := map[dynKey]bool{}
	for _, host := range b.queryHosts(ctx, req.Host) {
		dynamic := hostVersion(host).atLeast(7, 0, 0)
		for _, info := range hostPassthruInfo(host) {
			pci := hostPciDevice(host, info.Id)
			if !info.PassthruActive || pci == nil {
				continue
			}
			target.PciPassthrough = append(target.PciPassthrough, &types.VirtualMachinePciPassthroughInfo{
				VirtualMachineTargetInfo: types.VirtualMachineTargetInfo{Name: pciDeviceName(pci)},
				PciDevice:                *pci,
				SystemId:                 hostSystemID(host),
			})
			key := dynKey{int32(uint16(pci.VendorId)), int32(uint16(pci.DeviceId)), info.HardwareLabel}
			if !dynamic || seenDyn[key] {
				continue
			}
			seenDyn[key] = true
			target.DynamicPassthrough = append(target.DynamicPassthrough, types.VirtualMachineDynamicPassthroughInfo{
				VirtualMachineTargetInfo: types.VirtualMachineTargetInfo{Name: pciDeviceName(pci)},
				VendorName:               pci.VendorName,
				DeviceName:               pci.DeviceName,
				CustomLabel:              info.HardwareLabel,
				VendorId:                 key.vendor,
				DeviceId:                 key.device,
			})
		}
	}
	body.Res.Returnval = &target
	return res
}

// pciDeviceName is the name the config target shows for a device: its device name, or its
// address when the host has none.
func pciDeviceName(pci *types.HostPciDevice) string {
	if pci.DeviceName != "" {
		return pci.DeviceName
	}
	return pci.Id
}
