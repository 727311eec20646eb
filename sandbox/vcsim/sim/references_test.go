package sim

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Found by the conformance suite (tests/integration/vsphere/conformance): the references a host
// and a root pool carry name objects that exist (the host itself, its datastores and their
// browser, the pool itself), and the ServiceContent's SNMP system has a valid capability.
func TestReferencesResolve(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	pc := property.DefaultCollector(c)
	exists := func(what string, ref *types.ManagedObjectReference) {
		t.Helper()
		if ref == nil || s.Map.Get(*ref) == nil {
			t.Errorf("%s names no object: %v", what, ref)
		}
	}
	var hosts []mo.HostSystem
	if err := pc.Retrieve(ctx, refsOf(s, "HostSystem"), []string{"name", "config", "datastore", "datastoreBrowser"}, &hosts); err != nil {
		t.Fatal(err)
	}
	for _, h := range hosts {
		if got := h.Config.VsanHostConfig.HostSystem; got == nil || *got != h.Self {
			t.Errorf("%s: vsanHostConfig.hostSystem %v", h.Name, got)
		}
		if len(h.Config.CacheConfigurationInfo) != len(h.Datastore) {
			t.Errorf("%s: cacheConfigurationInfo %v, datastores %v", h.Name, h.Config.CacheConfigurationInfo, h.Datastore)
		}
		for _, cc := range h.Config.CacheConfigurationInfo {
			exists(h.Name+" cacheConfigurationInfo.key", &cc.Key)
		}
		exists(h.Name+" datastoreBrowser", &h.DatastoreBrowser)
	}
	var pools []mo.ResourcePool
	if err := pc.Retrieve(ctx, refsOf(s, "ResourcePool"), []string{"name", "config", "summary"}, &pools); err != nil {
		t.Fatal(err)
	}
	for _, p := range pools {
		if e := p.Config.Entity; e == nil || *e != p.Self {
			t.Errorf("pool %s: config.entity %v", p.Self, e)
		}
		if e := p.Summary.GetResourcePoolSummary().Config.Entity; e == nil || *e != p.Self {
			t.Errorf("pool %s: summary.config.entity %v", p.Self, e)
		}
	}
	var snmp mo.HostSnmpSystem
	if err := pc.RetrieveOne(ctx, *c.ServiceContent.SnmpSystem, []string{"limits"}, &snmp); err != nil {
		t.Fatal(err)
	}
	valid := false
	for _, v := range types.HostSnmpAgentCapability("").Values() {
		valid = valid || v == snmp.Limits.Capability
	}
	if !valid {
		t.Errorf("snmp limits.capability %q", snmp.Limits.Capability)
	}
}

func refsOf(s *Simulator, kind string) []types.ManagedObjectReference {
	var refs []types.ManagedObjectReference
	for _, e := range s.Map.All(kind) {
		refs = append(refs, e.Reference())
	}
	return refs
}

// The event and privilege catalogs list what vCenter's do: the event severities, every privilege
// (those of the Admin role) and its groups.
func TestCatalogsComplete(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	pc := property.DefaultCollector(c)
	var em mo.EventManager
	if err := pc.RetrieveOne(ctx, *c.ServiceContent.EventManager, []string{"description"}, &em); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, c := range em.Description.Category {
		keys = append(keys, c.GetElementDescription().Key)
	}
	if len(keys) != len(types.EventEventSeverity("").Values()) {
		t.Errorf("event categories %v", keys)
	}
	var am mo.AuthorizationManager
	if err := pc.RetrieveOne(ctx, *c.ServiceContent.AuthorizationManager, []string{"description", "roleList"}, &am); err != nil {
		t.Fatal(err)
	}
	admin := object.AuthorizationRoleList(am.RoleList).ByName("Admin")
	if admin == nil || len(am.Description.Privilege) != len(admin.Privilege) {
		t.Errorf("%d privileges described, Admin role %v", len(am.Description.Privilege), admin)
	}
	if len(am.Description.PrivilegeGroup) == 0 {
		t.Error("no privilege groups described")
	}
}
