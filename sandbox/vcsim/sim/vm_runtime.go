package sim

import (
	"reflect"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// runtimeStates gives a VM without FT or record/replay the runtime enum values vSphere reports:
// faultToleranceState "notConfigured", recordReplayState "inactive"
// (VirtualMachineFaultToleranceState, VirtualMachineRecordReplayState), in runtime and
// summary.runtime. Upstream's NewVirtualMachine (virtual_machine.go) leaves both empty, which
// pyVmomi can't read as those enums, so reading a VM's whole runtime or summary failed (e.g.
// vm.runtime.powerState), and so did a PropertyCollector batch holding such a VM. Values already
// set (an FT VM's state) are kept. The VM's guestHeartbeatStatus (ManagedEntityStatus, required)
// is "gray" as in summary.quickStats (no VMware Tools heartbeat), where upstream leaves it empty.
func runtimeStates(vm *simulator.VirtualMachine) {
	if vm.GuestHeartbeatStatus == "" {
		vm.GuestHeartbeatStatus = types.ManagedEntityStatusGray
	}
	for _, rt := range []*types.VirtualMachineRuntimeInfo{&vm.Runtime, &vm.Summary.Runtime} {
		if rt.FaultToleranceState == "" {
			rt.FaultToleranceState = types.VirtualMachineFaultToleranceStateNotConfigured
		}
		if rt.RecordReplayState == "" {
			rt.RecordReplayState = types.VirtualMachineRecordReplayStateInactive
		}
	}
}

// syncRuntime makes summary.runtime the same as runtime, as vCenter reports them
// (VirtualMachineSummary.runtime is the VM's VirtualMachineRuntimeInfo), and notifies what
// changed. Upstream keeps two copies and updates them unevenly: power-on sets only
// summary.runtime.bootTime (virtual_machine.go, powerVMTask.Run), so runtime.bootTime stayed
// unset. bootTime is therefore taken from summary.runtime, every other field from runtime; a
// powered-off VM has no bootTime. The caller holds the VM's lock.
func syncRuntime(ctx *simulator.Context, vm *simulator.VirtualMachine) {
	boot := vm.Summary.Runtime.BootTime
	if boot == nil {
		boot = vm.Runtime.BootTime
	}
	if vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOff {
		boot = nil
	}
	want := vm.Runtime
	want.BootTime = boot
	var changes []types.PropertyChange
	if !reflect.DeepEqual(vm.Runtime.BootTime, boot) {
		var val any // a nil pointer must be sent as nil: mo.ApplyPropertyChange can't assign it
		if boot != nil {
			val = boot
		}
		changes = append(changes, types.PropertyChange{Name: "runtime.bootTime", Val: val})
	}
	have := reflect.ValueOf(vm.Summary.Runtime)
	next := reflect.ValueOf(want)
	for i := 0; i < next.NumField(); i++ {
		f := next.Type().Field(i)
		name := strings.Split(f.Tag.Get("xml"), ",")[0]
		if name == "" || name == "-" {
			continue
		}
		if reflect.DeepEqual(have.Field(i).Interface(), next.Field(i).Interface()) {
			continue
		}
		val := next.Field(i).Interface()
		if next.Field(i).Kind() == reflect.Pointer && next.Field(i).IsNil() {
			val = nil
		}
		changes = append(changes, types.PropertyChange{Name: "summary.runtime." + name, Val: val})
	}
	if len(changes) > 0 {
		ctx.Update(vm, changes)
	}
}
