package sim

import (
	"fmt"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// rebootTracker holds hosts that are down for a reboot until they come back.
type rebootTracker struct {
	mu      sync.Mutex
	pending map[types.ManagedObjectReference]*pendingReboot
	taskSeq int64
}

type pendingReboot struct{ timer *time.Timer }

func init() {
	OverrideOf(func(ctx *simulator.Context, h *simulator.HostSystem) mo.Reference {
		if s := simFor(ctx.Map); s != nil {
			return &rebootingHost{HostSystem: h, sim: s}
		}
		return nil
	}, "RebootHost_Task")
}

// rebootingHost handles RebootHost_Task, which the upstream simulator lacks.
type rebootingHost struct {
	*simulator.HostSystem
	sim *Simulator
}

// RebootHostTask: without force the host must be in maintenance mode, else InvalidState
// (vSphere API reference, HostSystem.RebootHost_Task). The task completes once the reboot is
// under way; the host then shows runtime.connectionState notResponding until it is back
// (RebootDelay, or admin POST /reboots/complete), with passthrough active = enabled, no reboot
// required and a new runtime.bootTime.
func (h *rebootingHost) RebootHostTask(ctx *simulator.Context, req *types.RebootHost_Task) soap.HasFault {
	s, host := h.sim, h.HostSystem
	ref := s.startTask(ctx, host, "RebootHost", func() (types.AnyType, types.BaseMethodFault) {
		var fault types.BaseMethodFault
		s.withHost(host, func() {
			switch {
			case host.Runtime.ConnectionState != types.HostSystemConnectionStateConnected:
				fault = invalidState(fmt.Sprintf("Host %s is not connected", host.Name))
			case !req.Force && !host.Runtime.InMaintenanceMode:
				fault = invalidState(fmt.Sprintf("Host %s is not in maintenance mode", host.Name))
			}
		})
		if fault != nil {
			return nil, fault
		}
		s.beginReboot(host)
		return nil, nil
	})
	return &methods.RebootHost_TaskBody{Res: &types.RebootHost_TaskResponse{Returnval: ref}}
}

// beginReboot takes the host down and schedules its return. A forced reboot takes running VMs
// down with it.
func (s *Simulator) beginReboot(host *simulator.HostSystem) {
	s.withHost(host, func() {
		s.newBG().Update(host, []types.PropertyChange{
			{Name: "runtime.connectionState", Val: types.HostSystemConnectionStateNotResponding},
			{Name: "summary.runtime.connectionState", Val: types.HostSystemConnectionStateNotResponding},
		})
	})
	for _, ref := range append([]types.ManagedObjectReference(nil), host.Vm...) {
		if vm, ok := s.Map.Get(ref).(*simulator.VirtualMachine); ok {
			s.Map.WithLock(s.newBG(), vm, func() {
				if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn {
					s.newBG().Update(vm, []types.PropertyChange{
						{Name: "runtime.powerState", Val: types.VirtualMachinePowerStatePoweredOff},
						{Name: "summary.runtime.powerState", Val: types.VirtualMachinePowerStatePoweredOff},
					})
					refreshGen2(s.newBG(), vm)
				}
			})
		}
	}
	s.reboots.mu.Lock()
	defer s.reboots.mu.Unlock()
	if _, ok := s.reboots.pending[host.Self]; ok {
		return
	}
	p := &pendingReboot{}
	p.timer = time.AfterFunc(s.opts.RebootDelay, func() { s.finishReboot(host.Self) })
	s.reboots.pending[host.Self] = p
}

// CompleteReboots brings every rebooting host back now (admin POST /reboots/complete) and
// returns how many there were.
func (s *Simulator) CompleteReboots() int {
	s.reboots.mu.Lock()
	var refs []types.ManagedObjectReference
	for ref, p := range s.reboots.pending {
		if p.timer.Stop() {
			refs = append(refs, ref)
		}
	}
	s.reboots.mu.Unlock()
	for _, ref := range refs {
		s.finishReboot(ref)
	}
	return len(refs)
}

// PendingReboots is the number of hosts currently down for a reboot.
func (s *Simulator) PendingReboots() int {
	s.reboots.mu.Lock()
	defer s.reboots.mu.Unlock()
	return len(s.reboots.pending)
}

// finishReboot: after a reboot every passthrough change is in effect ("enabled + rebooted" =
// active, vSphere API reference HostPciPassthruInfo.passthruActive), so no reboot is required.
func (s *Simulator) finishReboot(ref types.ManagedObjectReference) {
	s.reboots.mu.Lock()
	_, ok := s.reboots.pending[ref]
	delete(s.reboots.pending, ref)
	s.reboots.mu.Unlock()
	if !ok {
		return
	}
	host, ok := s.Map.Get(ref).(*simulator.HostSystem)
	if !ok {
		return
	}
	if pts := s.passthru[ref]; pts != nil {
		ctx := s.newBG()
		ctx.WithLock(pts, func() {
			pts.activateAll()
			pts.publish(ctx)
		})
	}
	now := time.Now()
	s.withHost(host, func() {
		s.newBG().Update(host, []types.PropertyChange{
			{Name: "runtime.connectionState", Val: types.HostSystemConnectionStateConnected},
			{Name: "summary.runtime.connectionState", Val: types.HostSystemConnectionStateConnected},
			{Name: "runtime.bootTime", Val: &now},
			{Name: "summary.runtime.bootTime", Val: &now},
		})
	})
}

func (r *rebootTracker) stopAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for ref, p := range r.pending {
		p.timer.Stop()
		delete(r.pending, ref)
	}
}

func invalidState(msg string) *types.InvalidState {
	return &types.InvalidState{VimFault: types.VimFault{MethodFault: types.MethodFault{
		FaultMessage: []types.LocalizableMessage{{Key: "com.vmware.dpio.vcsim", Message: msg}},
	}}}
}
