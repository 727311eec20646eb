package sim

import (
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// completeCatalogs fills required lists of two static catalogs upstream leaves empty
// (simulator/event_manager.go, authorization_manager.go), which the conformance suite found:
// EventManager.description.category lists the event severities (EventEventSeverity), and
// AuthorizationManager.description lists every privilege (upstream's privilegeList is empty: the
// Admin role's, which hold them all) and every privilege group, as vCenter does (label = the id;
// vCenter's localized labels are not known here).
func (s *Simulator) completeCatalogs(content types.ServiceContent) {
	if em, ok := s.Map.Get(*content.EventManager).(*simulator.EventManager); ok && len(em.Description.Category) == 0 {
		for _, sev := range types.EventEventSeverity("").Values() {
			em.Description.Category = append(em.Description.Category, element(string(sev)))
		}
	}
	if content.AuthorizationManager == nil {
		return
	}
	am, ok := s.Map.Get(*content.AuthorizationManager).(*simulator.AuthorizationManager)
	if !ok || len(am.Description.Privilege) > 0 {
		return
	}
	desc := types.AuthorizationDescription{}
	groups := map[string]bool{}
	admin := object.AuthorizationRoleList(am.RoleList).ByName("Admin")
	if admin == nil {
		return
	}
	for _, id := range admin.Privilege {
		desc.Privilege = append(desc.Privilege, element(id))
		// A privilege's group is its id up to the last dot ("VirtualMachine.Config").
		if i := strings.LastIndex(id, "."); i > 0 && !groups[id[:i]] {
			groups[id[:i]] = true
			desc.PrivilegeGroup = append(desc.PrivilegeGroup, element(id[:i]))
		}
	}
	am.Description = desc
}

func element(key string) *types.ElementDescription {
	return &types.ElementDescription{Key: key, Description: types.Description{Label: key, Summary: key}}
}
