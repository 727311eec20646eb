package sim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// UpdatePassthruConfig implements HostPciPassthruSystem.UpdatePassthruConfig. It is synchronous
// (not a task) and throws HostConfigFault (vSphere API reference). The whole request is
// validated before anything changes, so a refused call leaves the host untouched.
func (p *PciPassthruSystem) UpdatePassthruConfig(ctx *simulator.Context, req *types.UpdatePassthruConfig) soap.HasFault {
	body := &methods.UpdatePassthruConfigBody{}
	if f := hostReachable(p.host); f != nil {
		body.Fault_ = f
		return body
	}

	type change struct {
		enabled bool
		label   *string
		now     bool
	}
	changes := map[string]*change{}
	for _, base := range req.Config {
		cfg := base.GetHostPciPassthruConfig()
		info := p.info(cfg.Id)
		if info == nil {
			body.Fault_ = configFault("Device %s was not found on host %s", cfg.Id, p.host.Name)
			return body
		}
		if !info.PassthruCapable {
			body.Fault_ = configFault("Device %s on host %s is not capable of passthrough", cfg.Id, p.host.Name)
			return body
		}
		// hardwareLabel was added in vSphere 7.0.2 (vSphere API reference).
		if cfg.HardwareLabel != "" && !p.version.atLeast(7, 0, 2) {
			body.Fault_ = configFault("hardwareLabel needs ESXi 7.0.2 or later; host %s runs %s", p.host.Name, p.version)
			return body
		}
		now := p.applyNow(cfg.ApplyNow)
		// Dependent devices are unclaimed from the vmkernel together, so they change together.
		for _, id := range p.group(cfg.Id) {
			c := changes[id]
			if c != nil && c.enabled != cfg.PassthruEnabled {
				body.Fault_ = configFault("Conflicting passthrough settings for device %s and its dependent devices on host %s", id, p.host.Name)
				return body
			}
			if c == nil {
				c = &change{}
				changes[id] = c
			}
			c.enabled = cfg.PassthruEnabled
			c.now = c.now || now
			if id == cfg.Id && cfg.HardwareLabel != "" {
				label := cfg.HardwareLabel
				c.label = &label
			}
		}
	}

	for id, c := range changes {
		info := p.info(id)
		info.PassthruEnabled = c.enabled
		if c.label != nil {
			info.HardwareLabel = *c.label
		}
		if c.now {
			info.PassthruActive = c.enabled
		}
	}
	p.publish(ctx)
	body.Res = &types.UpdatePassthruConfigResponse{}
	return body
}

// applyNow: "When unset, the behavior will be determined automatically based on
// HostCapability.deviceRebindWithoutRebootSupported. If the configuration can be applied
// immediately, it will be, otherwise the changes will take effect after reboot." (vSphere API
// reference, HostPciPassthruConfig.applyNow, 7.0). So applyNow=true on a host that can't
// rebind still waits for a reboot, and applyNow=false always does.
func (p *PciPassthruSystem) applyNow(req *bool) bool {
	rebind := p.host.Capability != nil && p.host.Capability.DeviceRebindWithoutRebootSupported != nil &&
		*p.host.Capability.DeviceRebindWithoutRebootSupported
	if req == nil {
		return rebind
	}
	return *req && rebind
}
