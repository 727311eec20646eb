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
	if ctx.Session != nil {
		noteCaller(ctx, method.This)
	}
	if method.Name == "Fetch" {
		if f := fetchHandler(ctx, method); f != nil {
			return f, nil
		}
	}
	obj, fault := resolve(ctx, method)
	if obj == nil && fault == nil { // after resolve: injected faults (admin_faults.go) come first
		if w := waitHandler(ctx, method); w != nil { // waitforupdates.go
			return w, nil
		}
	}
	if ctx.Session != nil {
		routeSession(ctx, method.This, obj)
	}
	return obj, fault
}

func resolve(ctx *simulator.Context, method *simulator.Method) (mo.Reference, types.BaseMethodFault) {
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

// The simulator resolves the handler of an authenticated call with Session.Get(this), which
// falls back to the global object and so would discard the override returned by Handler.
// Session.Get prefers the session's own registry, so the override is placed there for the
// call; the next call on the same object without an override removes it again. Overrides
// embed the object they wrap, so a leftover one is never stale.
var (
	routedMu sync.Mutex
	routed   = map[*simulator.Registry]map[types.ManagedObjectReference]bool{}
)

func routeSession(ctx *simulator.Context, ref types.ManagedObjectReference, obj mo.Reference) {
	reg := ctx.Session.Registry
	if reg == nil {
		return
	}
	routedMu.Lock()
	defer routedMu.Unlock()
	refs := routed[reg]
	if obj != nil {
		if refs == nil {
			refs = map[types.ManagedObjectReference]bool{}
			routed[reg] = refs
		}
		refs[ref] = true
		reg.Put(obj)
		return
	}
	if refs[ref] {
		delete(refs, ref)
		reg.Remove(ctx, ref)
	}
}

// Install routes every method call of a simulator registry through the registered overrides.
// Call it once on the model's registry (simulator.Model.Map or ctx.Map in tests).
func Install(r *simulator.Registry) {
	r.Handler = dispatch
	r.AddHandler(registryHooks{})
}

// OverrideOf registers `wrap` for `methods` on objects of type T (e.g. *simulator.HostSystem):
// the type check every override needs. `wrap` returns nil to leave a call to the simulator.
func OverrideOf[T mo.Reference](wrap func(ctx *simulator.Context, obj T) mo.Reference, methods ...string) {
	o := func(ctx *simulator.Context, this mo.Reference, _ *simulator.Method) (mo.Reference, types.BaseMethodFault) {
		if obj, ok := this.(T); ok {
			return wrap(ctx, obj), nil
		}
		return nil, nil
	}
	for _, m := range methods {
		RegisterOverride(m, o)
	}
}
