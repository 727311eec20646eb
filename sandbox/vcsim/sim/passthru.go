package sim

import (
	"fmt"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// PciPassthruSystem is a host's HostPciPassthruSystem (configManager.pciPassthruSystem), which
// the upstream simulator lacks. Its pciPassthruInfo is the source of truth; every change is
// mirrored into the host's config.pciPassthruInfo and summary.rebootRequired through
// Registry.Update so that PropertyCollector watchers see it.
//
// Locking: SOAP calls hold this object's lock; code that also touches the host takes the host
// lock inside it, never the other way round.
type PciPassthruSystem struct {
	mo.HostPciPassthruSystem

	host    *simulator.HostSystem
	version esxiVersion
}

func newPciPassthruSystem(h *simulator.HostSystem, spec *Host) *PciPassthruSystem {
	p := &PciPassthruSystem{host: h}
	// The wire type is vSphere's (HostPciPassthruSystem), not this Go type's name, which the
	// registry would use otherwise: pyVmomi can't deserialize a moref of an unknown type.
	p.Self = types.ManagedObjectReference{Type: "HostPciPassthruSystem"}
	p.version, _ = parseVersion(spec.Version)
	capable := spec.hasIOMMU()
	for _, d := range hostPciDevices(spec) {
		yd := spec.device(d.Id)
		info := &types.HostPciPassthruInfo{Id: d.Id, DependentDevice: d.Id}
		// Without an IOMMU (VT-d / AMD-Vi off in the BIOS) no device is passthrough capable:
		// "Host does not support passthrough configuration" (the vSphere Client's words).
		info.PassthruCapable = capable
		if yd != nil {
			if yd.Capable != nil {
				info.PassthruCapable = capable && *yd.Capable
			}
			info.PassthruEnabled = info.PassthruCapable && yd.Enabled
			info.PassthruActive = info.PassthruCapable && yd.Active
			info.HardwareLabel = yd.HardwareLabel
			if yd.DependentDevice != "" {
				info.DependentDevice = yd.DependentDevice
			}
		}
		p.PciPassthruInfo = append(p.PciPassthruInfo, info)
	}
	return p
}

// infoCopy returns a deep copy: property values handed to Registry.Update or the host must
// never alias the live slice.
func (p *PciPassthruSystem) infoCopy() []types.BaseHostPciPassthruInfo {
	out := make([]types.BaseHostPciPassthruInfo, len(p.PciPassthruInfo))
	for i, b := range p.PciPassthruInfo {
		c := *b.GetHostPciPassthruInfo()
		out[i] = &c
	}
	return out
}

func (p *PciPassthruSystem) info(id string) *types.HostPciPassthruInfo {
	for _, b := range p.PciPassthruInfo {
		if i := b.GetHostPciPassthruInfo(); i.Id == id {
			return i
		}
	}
	return nil
}

// rebootRequired: a device whose enabled state differs from its active state needs a host
// reboot to take effect, in either direction (Broadcom KB 309986).
func (p *PciPassthruSystem) rebootRequired() bool {
	for _, b := range p.PciPassthruInfo {
		if i := b.GetHostPciPassthruInfo(); i.PassthruCapable && i.PassthruEnabled != i.PassthruActive {
			return true
		}
	}
	return false
}

// group returns the ids that must change together with id: devices linked through
// dependentDevice ("device which needs to be unclaimed by vmkernel", vSphere API reference),
// e.g. a GPU and its HDMI audio function.
func (p *PciPassthruSystem) group(id string) []string {
	members := map[string]bool{id: true}
	for changed := true; changed; {
		changed = false
		for _, b := range p.PciPassthruInfo {
			i := b.GetHostPciPassthruInfo()
			in, dep := members[i.Id], i.DependentDevice != "" && members[i.DependentDevice]
			if in && i.DependentDevice != "" && !members[i.DependentDevice] && p.info(i.DependentDevice) != nil {
				members[i.DependentDevice], changed = true, true
			}
			if dep && !in {
				members[i.Id], changed = true, true
			}
		}
	}
	var out []string
	for _, b := range p.PciPassthruInfo { // inventory order, for stable results
		if id := b.GetHostPciPassthruInfo().Id; members[id] {
			out = append(out, id)
		}
	}
	return out
}

func configFault(format string, args ...any) *soap.Fault {
	msg := fmt.Sprintf(format, args...)
	return simulator.Fault(msg, &types.HostConfigFault{VimFault: types.VimFault{MethodFault: types.MethodFault{
		FaultMessage: []types.LocalizableMessage{{Key: "com.vmware.dpio.vcsim.passthru", Message: msg}},
	}}})
}

// hostReachable refuses configuration of a host vCenter can't talk to (e.g. while it reboots).
func hostReachable(h *simulator.HostSystem) *soap.Fault {
	switch h.Runtime.ConnectionState {
	case types.HostSystemConnectionStateConnected:
		return nil
	case types.HostSystemConnectionStateNotResponding:
		return simulator.Fault(fmt.Sprintf("Host %s is not responding", h.Name), &types.HostNotReachable{})
	default:
		return simulator.Fault(fmt.Sprintf("Host %s is not connected", h.Name), &types.HostNotConnected{})
	}
}

// Refresh re-reads passthrough state. The simulator's state is always current, so it only
// re-publishes it.
func (p *PciPassthruSystem) Refresh(ctx *simulator.Context, _ *types.Refresh) soap.HasFault {
	body := &methods.RefreshBody{}
	if f := hostReachable(p.host); f != nil {
		body.Fault_ = f
		return body
	}
	p.publish(ctx)
	body.Res = &types.RefreshResponse{}
	return body
}

// publish pushes the current state to this object's and the host's properties.
func (p *PciPassthruSystem) publish(ctx *simulator.Context) {
	ctx.Update(p, []types.PropertyChange{{Name: "pciPassthruInfo", Val: p.infoCopy()}})
	reboot := p.rebootRequired()
	info := p.infoCopy()
	ctx.WithLock(p.host, func() {
		ctx.Update(p.host, []types.PropertyChange{
			{Name: "config.pciPassthruInfo", Val: info},
			{Name: "summary.rebootRequired", Val: reboot},
		})
	})
}

// activateAll makes active = enabled on every device: what a host reboot does.
func (p *PciPassthruSystem) activateAll() {
	for _, b := range p.PciPassthruInfo {
		i := b.GetHostPciPassthruInfo()
		i.PassthruActive = i.PassthruCapable && i.PassthruEnabled
	}
}
