package sim

import (
	"context"
	"fmt"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// startTask runs a long task (maintenance mode, reboot) in the background. simulator.Task.Run
// keeps the entity's lock while the task runs, which would block every PropertyCollector read
// of the host for the whole drain; this publishes the Task object and its state changes through
// the registry instead, so watchers and WaitForResult see them the same way.
func (s *Simulator) startTask(ctx *simulator.Context, entity *simulator.HostSystem, id string,
	run func() (types.AnyType, types.BaseMethodFault)) types.ManagedObjectReference {
	return s.startTaskOn(ctx, entity.Reference(), entity.Name, id, run)
}

// startTaskOn is startTask for any managed entity, named by its reference and name.
func (s *Simulator) startTaskOn(ctx *simulator.Context, ref types.ManagedObjectReference, name, id string,
	run func() (types.AnyType, types.BaseMethodFault)) types.ManagedObjectReference {
	task := &simulator.Task{}
	task.Info.Name = id + "_Task"
	task.Info.DescriptionId = fmt.Sprintf("%s.%s", ref.Type, vmodlMethod(id))
	task.Info.Entity = &ref
	task.Info.EntityName = name
	task.Info.Reason = &types.TaskReasonUser{UserName: userName(ctx)}
	task.Info.QueueTime = time.Now()
	task.Info.State = types.TaskInfoStateQueued
	task.Self = types.ManagedObjectReference{Type: "Task", Value: fmt.Sprintf("task-dpio-%d", s.nextTaskID())}
	task.Info.Key = task.Self.Value
	task.Info.Task = task.Self
	s.Map.Put(task)
	s.Map.AtomicUpdate(s.newBG(), task, []types.PropertyChange{
		{Name: "info.startTime", Val: time.Now()},
		{Name: "info.state", Val: types.TaskInfoStateRunning},
	})
	go func() {
		res, fault := run()
		state := types.TaskInfoStateSuccess
		var lf any
		if fault != nil {
			state = types.TaskInfoStateError
			lf = types.LocalizedMethodFault{Fault: fault, LocalizedMessage: taskFaultMessage(fault)}
		}
		s.Map.AtomicUpdate(s.newBG(), task, []types.PropertyChange{
			{Name: "info.completeTime", Val: time.Now()},
			{Name: "info.state", Val: state},
			{Name: "info.result", Val: res},
			{Name: "info.error", Val: lf},
		})
	}()
	return task.Self
}

func (s *Simulator) nextTaskID() int64 {
	s.reboots.mu.Lock()
	defer s.reboots.mu.Unlock()
	s.reboots.taskSeq++
	return s.reboots.taskSeq
}

func taskFaultMessage(f types.BaseMethodFault) string {
	if m := f.GetMethodFault().FaultMessage; len(m) > 0 {
		return m[0].Message
	}
	return fmt.Sprintf("%T", f)
}

// vmodlNames are the vmodl methods whose names differ from their SOAP method's: vCenter's
// TaskInfo.descriptionId is "<type>.<vmodl method>", e.g. "HostSystem.reboot" for
// RebootHost_Task (vSphere API reference, HostSystem; TaskInfo.descriptionId). The operator tells
// its reboot tasks by it in HostSystem.recentTask; info.name stays "RebootHost_Task".
var vmodlNames = map[string]string{"RebootHost": "reboot"}

// vmodlMethod is the vmodl method of SOAP method id (without "_Task").
func vmodlMethod(id string) string {
	if name, ok := vmodlNames[id]; ok {
		return name
	}
	return lowerFirst(id)
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]|0x20) + s[1:]
}

func userName(ctx *simulator.Context) string {
	if ctx.Session != nil && ctx.Session.UserName != "" {
		return ctx.Session.UserName
	}
	return "vcsim"
}

// withHost runs f under the host's lock on behalf of the background context.
func (s *Simulator) withHost(h mo.Reference, f func()) { s.Map.WithLock(s.newBG(), h, f) }

// newBG returns a fresh lock owner for background work. simulator locks are re-entrant per
// owner, so concurrent goroutines must never share one.
func (s *Simulator) newBG() *simulator.Context {
	return &simulator.Context{Context: context.Background(), Map: s.Map}
}
