package sim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// completeReferences runs once the inventory is built. Upstream builds hosts and root resource
// pools from its ESXi template (simulator/esx/host_system.go, resource_pool.go) and keeps the
// template's own references, which name objects that exist only on a standalone ESXi: a host's
// config.vsanHostConfig.hostSystem is "ha-host", config.cacheConfigurationInfo[].key the
// template's datastore, datastoreBrowser "ha-host-datastorebrowser"; a root pool's
// config.entity and summary.config.entity are "ha-root-pool". A client following them gets
// ManagedObjectNotFound; and every pool's summary is the same shared value. Each now names the object itself, its datastores and their browser.
// The ServiceContent's HostSnmpSystem is a zero-valued placeholder (simulator/model.go creates
// one per unimplemented content reference), whose limits.capability "" is no
// HostSnmpAgentCapability: pyVmomi cannot parse it; it gets ESXi's limits.
func (s *Simulator) completeReferences() {
	for _, e := range s.Map.All("HostSystem") {
		h := e.(*simulator.HostSystem)
		self := h.Self
		if h.Config == nil {
			continue
		}
		if h.Config.VsanHostConfig != nil {
			h.Config.VsanHostConfig.HostSystem = &self
		}
		var cache []types.HostCacheConfigurationInfo
		for _, ds := range h.Datastore {
			cache = append(cache, types.HostCacheConfigurationInfo{Key: ds, SwapSize: 0})
		}
		h.Config.CacheConfigurationInfo = cache
		if len(h.Datastore) > 0 {
			if ds, ok := s.Map.Get(h.Datastore[0]).(*simulator.Datastore); ok && ds.Browser.Value != "" {
				h.DatastoreBrowser = ds.Browser
			}
		}
	}
	for _, e := range s.Map.All("ResourcePool") {
		p, ok := e.(*simulator.ResourcePool)
		if !ok {
			continue
		}
		self := p.Self
		p.Config.Entity = &self
		// Upstream's pools share one summary value (the template's): each gets its own copy.
		if sum, ok := p.Summary.(*types.ResourcePoolSummary); ok && sum != nil {
			own := *sum
			own.Config.Entity = &self
			p.Summary = &own
		}
	}
	si := s.Map.Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	s.completeCatalogs(si.Content)
	if ref := si.Content.SnmpSystem; ref != nil {
		if snmp, ok := s.Map.Get(*ref).(*mo.HostSnmpSystem); ok {
			snmp.Limits = types.HostSnmpSystemAgentLimits{
				MaxReadOnlyCommunities: 10, MaxTrapDestinations: 10, MaxCommunityLength: 64,
				MaxBufferSize: 1472, Capability: types.HostSnmpAgentCapabilityCOMPLETE,
			}
		}
	}
}
