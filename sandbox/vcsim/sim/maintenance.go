package sim

import (
	"fmt"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The upstream simulator enters maintenance mode at once, regardless of running VMs, and
// without a property notification. These overrides follow vSphere instead.
func init() {
	OverrideOf(func(ctx *simulator.Context, h *simulator.HostSystem) mo.Reference {
		if s := simFor(ctx.Map); s != nil {
			return &maintenanceHost{HostSystem: h, sim: s}
		}
		return nil
	}, "EnterMaintenanceMode_Task", "ExitMaintenanceMode_Task")
}

type maintenanceHost struct {
	*simulator.HostSystem
	sim *Simulator
}

// drainPoll is how often a draining host re-checks its VMs.
const drainPoll = 50 * time.Millisecond

// EnterMaintenanceModeTask: "The task completes when the host successfully enters maintenance
// mode or the timeout expires, and in the latter case the task contains a Timeout fault. If the
// timeout is less than or equal to zero, there is no timeout." While powered-on VMs remain the
// host waits; in a DRS cluster DRS migrates fully automated VMs, and with evacuatePoweredOffVms
// powered-off VMs must leave too (vSphere API reference, HostSystem.EnterMaintenanceMode_Task).
// A VM with a PCI passthrough device can't be vMotioned (vSphere docs, VMDirectPath I/O): it
// stays until someone powers it off. A host already in maintenance mode completes at once.
func (h *maintenanceHost) EnterMaintenanceModeTask(ctx *simulator.Context, req *types.EnterMaintenanceMode_Task) soap.HasFault {
	s, host := h.sim, h.HostSystem
	user := userName(ctx)
	ref := s.startTask(ctx, host, "EnterMaintenanceMode", func() (types.AnyType, types.BaseMethodFault) {
		deadline := time.Time{}
		entering := false
		if req.Timeout > 0 {
			deadline = time.Now().Add(time.Duration(req.Timeout) * time.Second)
		}
		for {
			var state types.HostSystemConnectionState
			var inMM bool
			s.withHost(host, func() { state, inMM = host.Runtime.ConnectionState, host.Runtime.InMaintenanceMode })
			if inMM {
				return nil, nil
			}
			if state != types.HostSystemConnectionStateConnected {
				return nil, invalidState(fmt.Sprintf("Host %s is not connected", host.Name))
			}
			if !entering {
				// vCenter's events: "Host X in DC is entering maintenance mode", each DRS
				// migration, then "Host X in DC has entered maintenance mode".
				entering = true
				s.postEvent(user, &types.EnteringMaintenanceModeEvent{HostEvent: s.hostEvent(host)})
			}
			blocking := s.drain(host, req.EvacuatePoweredOffVms != nil && *req.EvacuatePoweredOffVms, user)
			if blocking == 0 {
				s.setMaintenance(host, true)
				s.postEvent(user, &types.EnteredMaintenanceModeEvent{HostEvent: s.hostEvent(host)})
				return nil, nil
			}
			if !deadline.IsZero() && time.Now().After(deadline) {
				return nil, &types.Timedout{VimFault: types.VimFault{MethodFault: types.MethodFault{
					FaultMessage: []types.LocalizableMessage{{Key: "com.vmware.dpio.vcsim.maintenance",
						Message: fmt.Sprintf("Operation timed out: host %s still has %d VMs that can't be evacuated", host.Name, blocking)}},
				}}}
			}
			time.Sleep(drainPoll)
		}
	})
	return &methods.EnterMaintenanceMode_TaskBody{Res: &types.EnterMaintenanceMode_TaskResponse{Returnval: ref}}
}

// ExitMaintenanceModeTask leaves maintenance mode (with a property notification).
func (h *maintenanceHost) ExitMaintenanceModeTask(ctx *simulator.Context, _ *types.ExitMaintenanceMode_Task) soap.HasFault {
	s, host := h.sim, h.HostSystem
	user := userName(ctx)
	ref := s.startTask(ctx, host, "ExitMaintenanceMode", func() (types.AnyType, types.BaseMethodFault) {
		var state types.HostSystemConnectionState
		s.withHost(host, func() { state = host.Runtime.ConnectionState })
		if state != types.HostSystemConnectionStateConnected {
			return nil, invalidState(fmt.Sprintf("Host %s is not connected", host.Name))
		}
		var was bool
		s.withHost(host, func() { was = host.Runtime.InMaintenanceMode })
		s.setMaintenance(host, false)
		if was {
			s.postEvent(user, &types.ExitMaintenanceModeEvent{HostEvent: s.hostEvent(host)})
		}
		return nil, nil
	})
	return &methods.ExitMaintenanceMode_TaskBody{Res: &types.ExitMaintenanceMode_TaskResponse{Returnval: ref}}
}

func (s *Simulator) setMaintenance(host *simulator.HostSystem, on bool) {
	s.withHost(host, func() {
		s.newBG().Update(host, []types.PropertyChange{
			{Name: "runtime.inMaintenanceMode", Val: on},
			{Name: "summary.runtime.inMaintenanceMode", Val: on},
		})
	})
}

// drain migrates what DRS would migrate and returns how many VMs still block maintenance mode.
func (s *Simulator) drain(host *simulator.HostSystem, evacuatePoweredOff bool, user string) int {
	var vms []types.ManagedObjectReference
	s.withHost(host, func() { vms = append(vms, host.Vm...) })
	cluster, _ := s.Map.Get(*host.Parent).(*simulator.ClusterComputeResource)
	blocking := 0
	for _, ref := range vms {
		vm, ok := s.Map.Get(ref).(*simulator.VirtualMachine)
		if !ok {
			continue
		}
		var on, passthrough bool
		s.Map.WithLock(s.newBG(), vm, func() {
			on = vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
			passthrough = hasPassthroughDevice(vm)
		})
		if !on && !evacuatePoweredOff {
			continue
		}
		if cluster != nil && s.drsFullyAutomated(cluster, ref) && !passthrough {
			if target := s.migrationTarget(cluster, host); target != nil {
				s.migrate(vm, host, target, user)
				continue
			}
		}
		blocking++
	}
	return blocking
}

// hasPassthroughDevice: DirectPath I/O devices rule out vMotion (vSphere docs, VMDirectPath I/O).
func hasPassthroughDevice(vm *simulator.VirtualMachine) bool {
	if vm.Config == nil {
		return false
	}
	for _, d := range vm.Config.Hardware.Device {
		if _, ok := d.(*types.VirtualPCIPassthrough); ok {
			return true
		}
	}
	return false
}

// migrationTarget picks the connected, not-in-maintenance host of the cluster with fewest VMs.
func (s *Simulator) migrationTarget(cluster *simulator.ClusterComputeResource, from *simulator.HostSystem) *simulator.HostSystem {
	var hosts []types.ManagedObjectReference
	s.Map.WithLock(s.newBG(), cluster, func() { hosts = append(hosts, cluster.Host...) })
	var best *simulator.HostSystem
	bestVMs := 0
	for _, ref := range hosts {
		h, ok := s.Map.Get(ref).(*simulator.HostSystem)
		if !ok || ref == from.Self {
			continue
		}
		var ok2 bool
		var n int
		s.withHost(h, func() {
			ok2 = h.Runtime.ConnectionState == types.HostSystemConnectionStateConnected && !h.Runtime.InMaintenanceMode
			n = len(h.Vm)
		})
		if ok2 && (best == nil || n < bestVMs) {
			best, bestVMs = h, n
		}
	}
	return best
}

// migrate moves a VM between hosts as a DRS vMotion would: runtime.host and both hosts' vm
// lists, each with a property notification; the VM's Gen2 runtime state is recomputed for the
// new host (vmDirectPathGen2Active goes false on a host without Gen2 support) and a
// DrsVmMigratedEvent is posted. Locks are taken one at a time.
func (s *Simulator) migrate(vm *simulator.VirtualMachine, from, to *simulator.HostSystem, user string) {
	s.withHost(from, func() {
		list := append([]types.ManagedObjectReference(nil), from.Vm...)
		simulator.RemoveReference(&list, vm.Self)
		s.newBG().Update(from, []types.PropertyChange{{Name: "vm", Val: list}})
	})
	s.withHost(to, func() {
		list := append(append([]types.ManagedObjectReference(nil), to.Vm...), vm.Self)
		s.newBG().Update(to, []types.PropertyChange{{Name: "vm", Val: list}})
	})
	ref := to.Self
	bg := s.newBG()
	s.Map.WithLock(bg, vm, func() {
		bg.Update(vm, []types.PropertyChange{
			{Name: "runtime.host", Val: &ref},
			{Name: "summary.runtime.host", Val: &ref},
		})
		refreshGen2(bg, vm)
	})
	ev := &types.DrsVmMigratedEvent{VmMigratedEvent: types.VmMigratedEvent{
		VmEvent:    s.vmEvent(vm, to),
		SourceHost: types.HostEventArgument{EntityEventArgument: types.EntityEventArgument{Name: from.Name}, Host: from.Self},
	}}
	if dc := ev.Datacenter; dc != nil {
		ev.SourceDatacenter = dc
	}
	s.postEvent(user, ev)
}
