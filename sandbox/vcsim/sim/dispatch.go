package sim

import (
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Override returns the object that should handle one SOAP method call instead of the
// simulator's own object, or nil to leave the call to the simulator. Overrides are how this
// simulator adds vSphere rules the upstream simulator lacks without forking it: the returned
// object usually embeds the original (e.g. *simulator.VirtualMachine) and defines only the
// methods it changes, so every other method still resolves through the embedded value.
type Override func(ctx *simulator.Context, this mo.Reference, method *simulator.Method) (mo.Reference, types.BaseMethodFault)

var (
	overridesMu sync.RWMutex
	overrides   = map[string][]Override{}
)

// RegisterOverride adds an override for a SOAP method name as it appears on the wire
// (e.g. "ReconfigVM_Task", "PowerOnVM_Task"). Several overrides may be registered for one
// method; the first to return a non-nil object or fault wins.
func RegisterOverride(method string, o Override) {
	overridesMu.Lock()
	defer overridesMu.Unlock()
	overrides[method] = append(overrides[method], o)
}

// dispatch is installed as Registry.Handler. The simulator calls it before every method,
// including Login and calls without a session, which makes it the one place to count calls
// (admin /counters) and to refuse expired sessions (admin /sessions/expire).
func dispatch(ctx *simulator.Context, method *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	if s := simFor(ctx.Map); s != nil {
		s.Counters.inc(method.Name)
		if fault := s.sessions.check(ctx, method); fault != nil {
			return nil, fault
		}
	}
	overridesMu.RLock()
	list := overrides[method.Name]
	overridesMu.RUnlock()
	if len(list) == 0 {
		return nil, nil
	}
	this := ctx.Map.Get(method.This)
	if this == nil {
		return nil, nil
	}
	for _, o := range list {
		obj, fault := o(ctx, this, method)
		if fault != nil || obj != nil {
			return obj, fault
		}
	}
	return nil, nil
}

// Install routes every method call of a simulator registry through the registered overrides.
// Call it once on the model's registry (simulator.Model.Map or ctx.Map in tests).
func Install(r *simulator.Registry) {
	r.Handler = dispatch
}
