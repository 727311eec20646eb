package sim

import (
	"context"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// postEvent posts an event through the EventManager as the given user (the session that started
// the operation), as vCenter logs its own events: key, chain, time and message are the event
// manager's (EventManager.PostEvent). Background work has no session, so one carrying the user
// is made for the call.
func (s *Simulator) postEvent(user string, ev types.BaseEvent) {
	em := s.Map.EventManager()
	if em == nil {
		return
	}
	ctx := &simulator.Context{Context: context.Background(), Map: s.Map,
		Session: &simulator.Session{UserSession: types.UserSession{UserName: user}}}
	s.Map.WithLock(ctx, em, func() {
		em.PostEvent(ctx, &types.PostEvent{EventToPost: ev})
	})
}

// hostEvent is the Event part every host event carries: the host, its compute resource and
// datacenter, by name and reference.
func (s *Simulator) hostEvent(h *simulator.HostSystem) types.HostEvent {
	e := types.Event{
		Host: &types.HostEventArgument{EntityEventArgument: types.EntityEventArgument{Name: h.Name}, Host: h.Self},
	}
	s.fillParents(&e, h.Parent)
	return types.HostEvent{Event: e}
}

// vmEvent is the Event part of a VM event on host h.
func (s *Simulator) vmEvent(vm *simulator.VirtualMachine, h *simulator.HostSystem) types.VmEvent {
	e := types.Event{
		Vm:   &types.VmEventArgument{EntityEventArgument: types.EntityEventArgument{Name: vm.Name}, Vm: vm.Self},
		Host: &types.HostEventArgument{EntityEventArgument: types.EntityEventArgument{Name: h.Name}, Host: h.Self},
	}
	s.fillParents(&e, h.Parent)
	return types.VmEvent{Event: e}
}

// fillParents sets the compute resource and datacenter arguments from the host's parent chain.
func (s *Simulator) fillParents(e *types.Event, parent *types.ManagedObjectReference) {
	for parent != nil {
		obj, ok := s.Map.Get(*parent).(mo.Entity)
		if !ok {
			return
		}
		me := obj.Entity()
		switch parent.Type {
		case "ClusterComputeResource", "ComputeResource":
			if e.ComputeResource == nil {
				e.ComputeResource = &types.ComputeResourceEventArgument{EntityEventArgument: types.EntityEventArgument{Name: me.Name}, ComputeResource: *parent}
			}
		case "Datacenter":
			e.Datacenter = &types.DatacenterEventArgument{EntityEventArgument: types.EntityEventArgument{Name: me.Name}, Datacenter: *parent}
			return
		}
		parent = me.Parent
	}
}
