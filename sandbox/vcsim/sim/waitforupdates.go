package sim

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Incremental PropertyCollector.WaitForUpdatesEx: only what changed since the version the client
// holds, as vCenter answers.
//
// Upstream (simulator/property_collector.go, PropertyCollector.WaitForUpdatesEx and apply)
// queues every registry event and, every 20 ms, runs the whole filter again (collect: the
// traversal plus every property of every object) once for each queued Enter or Modify update,
// for each filter. With 625 hosts and their VMs one reconfigure task (a task enters, its info
// changes a few times, the VM changes) costs several full collections, and a burst of a few
// hundred updates answers minutes late. Its versions are not versions either: every answer
// says "-", an empty version reports only objects not reported before, and an answer lost on
// the wire is lost for good.
//
// This implementation keeps, per PropertyCollector:
//   - the objects each ObjectSpec of each filter selects (its traversal run with no
//     properties), recomputed only when an event can change them: a property one of its
//     traversal specs follows changed on an object of that spec's kind (ContainerView.view,
//     TaskManager.recentTask, HostSystem.vm, Folder.childEntity, ...), one of its objects left,
//     or an object entered of a kind it holds (so a task created recomputes the recent tasks,
//     not a ContainerView of every host and VM beside them in the same filter);
//   - the objects changed since the last answer and which properties, as the registry reports
//     them (Registry.AddHandler); for a member only the filter's paths related to a changed
//     property are read again (a parent path "runtime" for "runtime.powerState", a child path
//     "config.hardware.device" for "config"), so a value always is the object's current one;
//   - a log of object updates, each with a sequence number. The version is the number of the
//     last update an answer carries: WaitForUpdatesEx(v) returns the updates after v (an older
//     v gets everything since, as long as the log still holds it; a v the log no longer covers
//     or never issued is InvalidCollectorVersion), and an empty version returns every object of
//     every filter as "enter". MaxObjectUpdates (default 100, as upstream) pages an answer
//     with truncated=true; the next call with the returned version gets the rest at once.
//
// Wiring: dispatch sends WaitForUpdatesEx, WaitForUpdates, CancelWaitForUpdates and
// DestroyPropertyCollector of a session's collector here (waitHandler), pointing the call at
// waitRef so the session's PropertyCollector (which holds the filters) stays in its registry,
// as Fetch does (fetch.go). CreateFilter and DestroyPropertyFilter stay upstream's: the
// filters are read from PropertyCollector.filter at every step.

// incrementalWaitForUpdates switches the override; the benchmark turns it off to measure the
// upstream implementation on the same inventory.
var incrementalWaitForUpdates atomic.Bool

func init() { incrementalWaitForUpdates.Store(true) }

const (
	// wfuMaxObjectUpdates is the page size when the client sets none (upstream's and, in
	// practice, vCenter's: "PropertyCollector policy may still limit the total count").
	wfuMaxObjectUpdates = 100
	// wfuLogSize bounds the object updates a collector keeps; wfuKeepAcked is how many of those
	// a client already confirmed (by asking with a later version) stay for a client that asks
	// again with an older version (an answer lost on the wire).
	wfuLogSize   = 20000
	wfuKeepAcked = 1000
	// wfuSettle lets the updates of one operation (a task's info, then the object) arrive
	// together instead of in one answer each; upstream polls every 20 ms.
	wfuSettle = 10 * time.Millisecond
)

// wfuMaxDirty bounds the changed objects a collector nobody waits on collects (a session that
// ended without DestroyPropertyCollector keeps its collector's registry handler); past it the
// next wait reads every object of every filter again.
var wfuMaxDirty = 50000

// wfuRecollected counts, by kind, the objects that recomputing filter sets read (tests).
var wfuRecollected = struct {
	sync.Mutex
	kinds map[string]int
}{kinds: map[string]int{}}

func recollected(kind string) int {
	wfuRecollected.Lock()
	defer wfuRecollected.Unlock()
	return wfuRecollected.kinds[kind]
}

var waitRef = types.ManagedObjectReference{Type: "DpioWaitForUpdates", Value: "dpio-wait-for-updates"}

// waiter answers the wait methods of one session's PropertyCollector.
type waiter struct {
	pc *simulator.PropertyCollector
	st *wfuState
}

func (w *waiter) Reference() types.ManagedObjectReference { return waitRef }

// Lock and Unlock opt out of the registry's per-object lock for the call, as upstream's
// PropertyCollector does (nopLocker): a wait blocks for up to maxWaitSeconds.
func (w *waiter) Lock()   {}
func (w *waiter) Unlock() {}

var wfuStates sync.Map // *simulator.PropertyCollector -> *wfuState

// waitHandler is dispatch's answer for the wait methods of a session's collector (see waiter).
func waitHandler(ctx *simulator.Context, method *simulator.Method) *waiter {
	switch method.Name {
	case "WaitForUpdatesEx", "WaitForUpdates", "CancelWaitForUpdates", "DestroyPropertyCollector":
	default:
		return nil
	}
	if ctx.Session == nil || !incrementalWaitForUpdates.Load() {
		return nil
	}
	pc, ok := ctx.Session.Get(method.This).(*simulator.PropertyCollector)
	if !ok {
		return nil
	}
	method.This = waitRef
	v, _ := wfuStates.LoadOrStore(pc, newWfuState(pc))
	return &waiter{pc: pc, st: v.(*wfuState)}
}

// wfuState is the incremental state of one PropertyCollector.
type wfuState struct {
	pc      *simulator.PropertyCollector
	handler *wfuHandler

	// dirtyMu guards what registry handlers write; it is never held while an object lock is
	// taken (handlers run under the locks of the objects they report).
	dirtyMu    sync.Mutex
	dirty      map[types.ManagedObjectReference]*wfuDirty
	dirtyOrder []types.ManagedObjectReference
	overflow   bool // more than wfuMaxDirty: dirty was dropped, everything is re-read
	wake       chan struct{}

	// mu guards the rest; a step holds it while it reads objects.
	mu      sync.Mutex
	reg     *simulator.Registry
	filters map[types.ManagedObjectReference]*wfuFilter
	seq     int64
	log     []wfuEntry // ascending seq
	trimmed int64      // the highest seq dropped from the log
	snap    *wfuSnapshot
	snapIDs int64
	cancel  context.CancelFunc
}

type wfuDirty struct {
	structural bool // entered or left the inventory
	names      map[string]bool
}

type wfuEntry struct {
	seq    int64
	filter types.ManagedObjectReference
	update types.ObjectUpdate
}

// wfuSnapshot is the full state an empty version asked for, paged out by MaxObjectUpdates.
type wfuSnapshot struct {
	id      int64
	base    int64 // the log position the snapshot is the state at
	entries []wfuEntry
}

type wfuFilter struct {
	ref     types.ManagedObjectReference
	spec    types.PropertyFilterSpec
	members map[types.ManagedObjectReference]bool // every set's, together
	sets    []*wfuSet                             // one per ObjectSpec of the filter
}

// wfuSet is what one ObjectSpec of a filter selects. Kept apart so that an event recomputes
// only the sets it can change: a task created (TaskManager.recentTask) recomputes the set
// that follows recentTask, not the ContainerView of 5,625 hosts and VMs beside it, which cost
// the simulator 45% of its CPU with 5,000 VMs (docs/benchmarks.md, finding 25).
type wfuSet struct {
	spec    types.ObjectSpec
	members map[types.ManagedObjectReference]bool
	order   []types.ManagedObjectReference // its members in traversal order
	kinds   map[string]bool                // the kinds of its members at the last recomputation
	follows []wfuFollow                    // every traversal spec under it
}

// wfuFollow is one traversal spec: a property (its path's first field) of objects of a kind.
type wfuFollow struct {
	kind, field string
}

var wfuHandlerIDs atomic.Int64

// wfuHandler receives the registry's events for one collector.
type wfuHandler struct {
	self types.ManagedObjectReference
	st   *wfuState
}

func newWfuState(pc *simulator.PropertyCollector) *wfuState {
	st := &wfuState{
		pc:      pc,
		dirty:   map[types.ManagedObjectReference]*wfuDirty{},
		wake:    make(chan struct{}, 1),
		filters: map[types.ManagedObjectReference]*wfuFilter{},
	}
	st.handler = &wfuHandler{
		self: types.ManagedObjectReference{Type: "DpioWaitForUpdatesHandler", Value: fmt.Sprintf("wfu-%d", wfuHandlerIDs.Add(1))},
		st:   st,
	}
	return st
}

func (h *wfuHandler) Reference() types.ManagedObjectReference { return h.self }

func (h *wfuHandler) PutObject(_ *simulator.Context, obj mo.Reference) {
	h.st.mark(obj.Reference(), true, nil)
}

func (h *wfuHandler) UpdateObject(_ *simulator.Context, obj mo.Reference, changes []types.PropertyChange) {
	h.st.mark(obj.Reference(), false, changes)
}

func (h *wfuHandler) RemoveObject(_ *simulator.Context, ref types.ManagedObjectReference) {
	h.st.mark(ref, true, nil)
}

func (st *wfuState) mark(ref types.ManagedObjectReference, structural bool, changes []types.PropertyChange) {
	st.dirtyMu.Lock()
	if !st.overflow && len(st.dirty) >= wfuMaxDirty {
		st.overflow = true
		st.dirty, st.dirtyOrder = map[types.ManagedObjectReference]*wfuDirty{}, nil
	}
	if st.overflow {
		st.dirtyMu.Unlock()
		return
	}
	d := st.dirty[ref]
	if d == nil {
		d = &wfuDirty{names: map[string]bool{}}
		st.dirty[ref] = d
		st.dirtyOrder = append(st.dirtyOrder, ref)
	}
	d.structural = d.structural || structural
	for _, c := range changes {
		d.names[c.Name] = true
	}
	st.dirtyMu.Unlock()
	select {
	case st.wake <- struct{}{}:
	default:
	}
}

func (st *wfuState) takeDirty() ([]types.ManagedObjectReference, map[types.ManagedObjectReference]*wfuDirty, bool) {
	st.dirtyMu.Lock()
	defer st.dirtyMu.Unlock()
	order, dirty, overflow := st.dirtyOrder, st.dirty, st.overflow
	st.dirtyOrder, st.dirty, st.overflow = nil, map[types.ManagedObjectReference]*wfuDirty{}, false
	return order, dirty, overflow
}

// listen starts the registry events for this collector (once).
func (st *wfuState) listen(ctx *simulator.Context) {
	if st.reg == nil {
		st.reg = ctx.Map
		ctx.Map.AddHandler(st.handler)
	}
}

func (st *wfuState) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.cancel != nil {
		st.cancel()
	}
	if st.reg != nil {
		st.reg.RemoveHandler(st.handler)
	}
}

// step brings the filters up to date with what changed and appends the resulting updates to
// the log. initial says whether a filter created since the last step reports its objects as
// "enter" (not when an empty version is about to report everything anyway).
func (st *wfuState) step(ctx *simulator.Context, initial bool) types.BaseMethodFault {
	order, dirty, overflow := st.takeDirty()
	current := map[types.ManagedObjectReference]bool{}
	for _, ref := range append([]types.ManagedObjectReference(nil), st.pc.Filter...) {
		current[ref] = true
		f := st.filters[ref]
		if f == nil {
			pf, ok := ctx.Session.Get(ref).(*simulator.PropertyFilter)
			if !ok {
				continue
			}
			f = newWfuFilter(ref, pf.Spec)
			st.filters[ref] = f
			if err := st.refresh(ctx, f, initial); err != nil {
				return err
			}
			continue
		}
		if overflow {
			if err := st.reread(ctx, f); err != nil {
				return err
			}
			continue
		}
		if which := f.setsToRefresh(ctx, order, dirty); len(which) > 0 {
			if err := st.refreshSets(ctx, f, which, true); err != nil {
				return err
			}
		}
		for _, ref := range order {
			d := dirty[ref]
			if !f.members[ref] || len(d.names) == 0 {
				continue
			}
			if err := st.modified(ctx, f, ref, d.names); err != nil {
				return err
			}
		}
	}
	for ref := range st.filters {
		if !current[ref] {
			delete(st.filters, ref) // destroyed: its updates are no longer reported
		}
	}
	return nil
}

func newWfuFilter(ref types.ManagedObjectReference, spec types.PropertyFilterSpec) *wfuFilter {
	f := &wfuFilter{ref: ref, spec: spec}
	for _, o := range spec.ObjectSet {
		set := &wfuSet{spec: o}
		var walk func([]types.BaseSelectionSpec)
		walk = func(selections []types.BaseSelectionSpec) {
			for _, sel := range selections {
				if ts, ok := sel.(*types.TraversalSpec); ok {
					set.follows = append(set.follows, wfuFollow{kind: ts.Type, field: topField(ts.Path)})
					walk(ts.SelectSet)
				}
			}
		}
		walk(o.SelectSet)
		f.sets = append(f.sets, set)
	}
	return f
}

// topField is "config" for "config.hardware.device" and "device" for "device[4000].key".
func topField(path string) string {
	if i := strings.IndexAny(path, ".["); i >= 0 {
		return path[:i]
	}
	return path
}

// setsToRefresh: the sets whose objects this step's events can change: a property a traversal
// spec of the set follows changed on an object of the kind it follows from (ContainerView.view,
// TaskManager.recentTask, HostSystem.vm, ...), one of its members left or changed structurally,
// or an object entered of a kind the filter reads and the set held (or holds nothing yet).
func (f *wfuFilter) setsToRefresh(ctx *simulator.Context, order []types.ManagedObjectReference, dirty map[types.ManagedObjectReference]*wfuDirty) []int {
	// Each changed object is looked up once per step, not once per set.
	objs := make([]mo.Reference, len(order))
	for j, ref := range order {
		objs[j] = lookup(ctx, ref)
	}
	var which []int
	for i, set := range f.sets {
		for j, ref := range order {
			if set.changedBy(f, ref, objs[j], dirty[ref]) {
				which = append(which, i)
				break
			}
		}
	}
	return which
}

// changedBy: whether the change `d` of `ref` (`obj` as the session sees it, nil if gone) can
// change which objects or properties the set selects.
func (set *wfuSet) changedBy(f *wfuFilter, ref types.ManagedObjectReference, obj mo.Reference, d *wfuDirty) bool {
	for name := range d.names {
		for _, follow := range set.follows {
			if follow.field == topField(name) && obj != nil && kindMatches(obj, follow.kind) {
				return true
			}
		}
	}
	if !d.structural {
		return false
	}
	if set.members[ref] || set.spec.Obj == ref {
		return true
	}
	return obj != nil && f.reads(obj) && (len(set.members) == 0 || set.kinds[ref.Type])
}

// lookup finds an object as the caller's session sees it: a ListView, ContainerView or
// history collector lives in the session's own registry, not in the inventory's (ctx.Map).
// govc's task waits follow a ListView's "view" (view.TaskView); looking that up in ctx.Map
// found nothing, so a task added to the view never entered the filter.
func lookup(ctx *simulator.Context, ref types.ManagedObjectReference) mo.Reference {
	if ctx.Session != nil {
		return ctx.Session.Get(ref)
	}
	return ctx.Map.Get(ref)
}

// reads: whether one of the filter's property specs is for this object's kind.
func (f *wfuFilter) reads(obj mo.Reference) bool {
	for _, p := range f.spec.PropSet {
		if kindMatches(obj, p.Type) {
			return true
		}
	}
	return false
}

// kindMatches is upstream's rule (retrieveResult.collect): the type itself, or a type the
// object's managed object embeds (ManagedEntity, ComputeResource, ...).
func kindMatches(obj mo.Reference, kind string) bool {
	if obj.Reference().Type == kind {
		return true
	}
	t := reflect.TypeOf(obj)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return false
	}
	field, ok := t.FieldByName(kind)
	return ok && field.Anonymous
}

// refresh recomputes every set of the filter (see refreshSets).
func (st *wfuState) refresh(ctx *simulator.Context, f *wfuFilter, report bool) types.BaseMethodFault {
	all := make([]int, len(f.sets))
	for i := range f.sets {
		all[i] = i
	}
	return st.refreshSets(ctx, f, all, report)
}

// refreshSets recomputes these sets' objects: those that left the filter (no set holds them
// any more) are reported "leave", those that entered it "enter" with their properties (when
// report).
func (st *wfuState) refreshSets(ctx *simulator.Context, f *wfuFilter, which []int, report bool) types.BaseMethodFault {
	kinds := map[string]bool{}
	var props []types.PropertySpec
	for _, p := range f.spec.PropSet {
		if !kinds[p.Type] {
			kinds[p.Type] = true
			props = append(props, types.PropertySpec{Type: p.Type})
		}
	}
	for _, i := range which {
		set := f.sets[i]
		spec := types.PropertyFilterSpec{ObjectSet: []types.ObjectSpec{set.spec}, PropSet: props, ReportMissingObjectsInResults: types.NewBool(true)}
		res, fault := st.retrieve(ctx, spec)
		if fault != nil {
			return fault
		}
		wfuRecollected.Lock()
		for _, o := range res {
			wfuRecollected.kinds[o.Obj.Type]++
		}
		wfuRecollected.Unlock()
		set.members = make(map[types.ManagedObjectReference]bool, len(res))
		set.order = set.order[:0]
		set.kinds = map[string]bool{}
		for _, o := range res {
			set.members[o.Obj] = true
			set.order = append(set.order, o.Obj)
			set.kinds[o.Obj.Type] = true
		}
	}
	members := map[types.ManagedObjectReference]bool{}
	var entered []types.ManagedObjectReference // in traversal order, as upstream reports them
	for _, set := range f.sets {
		for _, ref := range set.order {
			if !members[ref] {
				members[ref] = true
				if !f.members[ref] {
					entered = append(entered, ref)
				}
			}
		}
	}
	if report {
		for ref := range f.members {
			if !members[ref] {
				st.append(f.ref, types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindLeave})
			}
		}
	}
	f.members = members
	if !report || len(entered) == 0 {
		return nil
	}
	return st.enter(ctx, f, entered, func(u types.ObjectUpdate) { st.append(f.ref, u) })
}

// reread reports every object of the filter with its properties read again ("modify"; "enter"
// and "leave" for objects that came or went): what is left after an overflow.
func (st *wfuState) reread(ctx *simulator.Context, f *wfuFilter) types.BaseMethodFault {
	before := f.members
	if err := st.refresh(ctx, f, true); err != nil {
		return err
	}
	var stayed []types.ManagedObjectReference
	for ref := range f.members {
		if before[ref] {
			stayed = append(stayed, ref)
		}
	}
	if len(stayed) == 0 {
		return nil
	}
	return st.enter(ctx, f, stayed, func(u types.ObjectUpdate) {
		u.Kind = types.ObjectUpdateKindModify
		st.append(f.ref, u)
	})
}

// enter reads the filter's properties of these objects and hands out each as an "enter".
func (st *wfuState) enter(ctx *simulator.Context, f *wfuFilter, refs []types.ManagedObjectReference, emit func(types.ObjectUpdate)) types.BaseMethodFault {
	spec := types.PropertyFilterSpec{PropSet: f.spec.PropSet, ReportMissingObjectsInResults: types.NewBool(true)}
	for _, ref := range refs {
		spec.ObjectSet = append(spec.ObjectSet, types.ObjectSpec{Obj: ref})
	}
	res, fault := st.retrieve(ctx, spec)
	if fault != nil {
		return fault
	}
	for _, o := range res {
		u := types.ObjectUpdate{Obj: o.Obj, Kind: types.ObjectUpdateKindEnter, MissingSet: o.MissingSet}
		for _, p := range o.PropSet {
			u.ChangeSet = append(u.ChangeSet, types.PropertyChange{Name: p.Name, Op: types.PropertyChangeOpAssign, Val: p.Val})
		}
		emit(u)
	}
	return nil
}

// modified reports a member's filter paths related to the changed properties, read again.
func (st *wfuState) modified(ctx *simulator.Context, f *wfuFilter, ref types.ManagedObjectReference, names map[string]bool) types.BaseMethodFault {
	obj := ctx.Map.Get(ref)
	if obj == nil {
		return nil // gone: the refresh reports it
	}
	var paths []string
	seen := map[string]bool{}
	add := func(p string) {
		if !seen[p] {
			seen[p] = true
			paths = append(paths, p)
		}
	}
	for _, p := range f.spec.PropSet {
		if !kindMatches(obj, p.Type) {
			continue
		}
		for name := range names {
			if p.All != nil && *p.All {
				add(topField(name))
				continue
			}
			for _, path := range p.PathSet {
				if related(path, name) {
					add(path)
				}
			}
		}
	}
	if len(paths) == 0 {
		return nil
	}
	spec := types.PropertyFilterSpec{
		ObjectSet:                     []types.ObjectSpec{{Obj: ref}},
		PropSet:                       []types.PropertySpec{{Type: ref.Type, PathSet: paths}},
		ReportMissingObjectsInResults: types.NewBool(true),
	}
	res, fault := st.retrieve(ctx, spec)
	if fault != nil || len(res) == 0 {
		return fault
	}
	vals := map[string]types.AnyType{}
	for _, p := range res[0].PropSet {
		vals[p.Name] = p.Val
	}
	missing := map[string]bool{}
	for _, m := range res[0].MissingSet {
		missing[m.Path] = true
	}
	u := types.ObjectUpdate{Obj: ref, Kind: types.ObjectUpdateKindModify}
	for _, p := range paths {
		if missing[p] {
			continue
		}
		// An unset property is an assign without a value, as upstream and vCenter report it.
		u.ChangeSet = append(u.ChangeSet, types.PropertyChange{Name: p, Op: types.PropertyChangeOpAssign, Val: vals[p]})
	}
	if len(u.ChangeSet) != 0 {
		st.append(f.ref, u)
	}
	return nil
}

// related: a change of `name` changes the value at `path` (the same property, a property
// inside it, or one containing it).
func related(path, name string) bool {
	return path == name || within(name, path) || within(path, name)
}

func within(s, prefix string) bool {
	return len(s) > len(prefix) && strings.HasPrefix(s, prefix) && (s[len(prefix)] == '.' || s[len(prefix)] == '[')
}

// retrieve runs a RetrievePropertiesEx in the caller's session (upstream's collect: the same
// traversal, permissions and values a client would read).
func (st *wfuState) retrieve(ctx *simulator.Context, spec types.PropertyFilterSpec) ([]types.ObjectContent, types.BaseMethodFault) {
	body := st.pc.RetrievePropertiesEx(ctx, &types.RetrievePropertiesEx{This: st.pc.Self, SpecSet: []types.PropertyFilterSpec{spec}})
	if f := body.Fault(); f != nil {
		if mf, ok := f.VimFault().(types.BaseMethodFault); ok {
			return nil, mf
		}
		return nil, &types.SystemError{Reason: f.String}
	}
	res := body.(*methods.RetrievePropertiesExBody).Res
	if res == nil || res.Returnval == nil {
		return nil, nil
	}
	return res.Returnval.Objects, nil
}

func (st *wfuState) append(filter types.ManagedObjectReference, u types.ObjectUpdate) {
	st.seq++
	st.log = append(st.log, wfuEntry{seq: st.seq, filter: filter, update: u})
	if n := len(st.log) - wfuLogSize; n > 0 {
		st.trimmed = st.log[n-1].seq
		st.log = append([]wfuEntry(nil), st.log[n:]...)
	}
}

// acked drops what the client confirmed by asking with version `from`, but the last
// wfuKeepAcked updates before it.
func (st *wfuState) acked(from int64) {
	i := 0
	for i < len(st.log) && st.log[i].seq <= from {
		i++
	}
	if n := i - wfuKeepAcked; n > 0 {
		st.trimmed = st.log[n-1].seq
		st.log = append([]wfuEntry(nil), st.log[n:]...)
	}
}

// since returns the log's updates after version `from` of filters that still exist.
func (st *wfuState) since(from int64) []wfuEntry {
	var out []wfuEntry
	for i := len(st.log) - 1; i >= 0 && st.log[i].seq > from; i-- {
		if st.filters[st.log[i].filter] != nil {
			out = append(out, st.log[i])
		}
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

// snapshot is the full state of every filter, each object "enter".
func (st *wfuState) snapshot(ctx *simulator.Context) (*wfuSnapshot, types.BaseMethodFault) {
	st.snapIDs++
	snap := &wfuSnapshot{id: st.snapIDs, base: st.seq}
	for _, ref := range st.pc.Filter {
		f := st.filters[ref]
		if f == nil || len(f.members) == 0 {
			continue
		}
		refs := make([]types.ManagedObjectReference, 0, len(f.members))
		for r := range f.members {
			refs = append(refs, r)
		}
		if fault := st.enter(ctx, f, refs, func(u types.ObjectUpdate) {
			snap.entries = append(snap.entries, wfuEntry{filter: f.ref, update: u})
		}); fault != nil {
			return nil, fault
		}
	}
	return snap, nil
}

// updateSet groups entries by filter in the order they come.
func updateSet(entries []wfuEntry, version string, truncated bool) *types.UpdateSet {
	set := &types.UpdateSet{Version: version}
	if truncated {
		set.Truncated = types.NewBool(true)
	}
	index := map[types.ManagedObjectReference]int{}
	for _, e := range entries {
		i, ok := index[e.filter]
		if !ok {
			i = len(set.FilterSet)
			index[e.filter] = i
			set.FilterSet = append(set.FilterSet, types.PropertyFilterUpdate{Filter: e.filter})
		}
		set.FilterSet[i].ObjectSet = append(set.FilterSet[i].ObjectSet, e.update)
	}
	return set
}

// wait is WaitForUpdatesEx: nil set with no fault when maxWaitSeconds passed without change.
func (st *wfuState) wait(ctx *simulator.Context, version string, opts *types.WaitOptions, maxObjects int) (*types.UpdateSet, types.BaseMethodFault) {
	wait, cancel := context.WithCancel(context.Background())
	once := false
	if opts != nil {
		if m := opts.MaxWaitSeconds; m != nil {
			once = *m == 0
			if *m > 0 {
				cancel()
				wait, cancel = context.WithTimeout(context.Background(), time.Duration(*m)*time.Second)
			}
		}
		if m := int(opts.MaxObjectUpdates); m > 0 && (maxObjects <= 0 || m < maxObjects) {
			maxObjects = m
		}
	}
	defer cancel()

	st.mu.Lock()
	if st.cancel != nil {
		st.cancel() // one wait per collector, as on vCenter: the newer call wins
	}
	st.cancel = cancel
	st.listen(ctx)

	if version == "" || strings.HasPrefix(version, "S") {
		defer st.mu.Unlock()
		return st.full(ctx, version, maxObjects)
	}
	from, err := strconv.ParseInt(version, 10, 64)
	if err != nil || from < 0 || from > st.seq || from < st.trimmed {
		st.mu.Unlock()
		return nil, new(types.InvalidCollectorVersion)
	}
	st.acked(from)
	st.mu.Unlock()

	for {
		st.mu.Lock()
		fault := st.step(ctx, true)
		var entries []wfuEntry
		if fault == nil {
			entries = st.since(from)
		}
		st.mu.Unlock()
		if fault != nil {
			return nil, fault
		}
		if len(entries) != 0 {
			truncated := maxObjects > 0 && len(entries) > maxObjects
			if truncated {
				entries = entries[:maxObjects]
			}
			return updateSet(entries, strconv.FormatInt(entries[len(entries)-1].seq, 10), truncated), nil
		}
		if once {
			return nil, nil
		}
		select {
		case <-wait.Done():
			if wait.Err() == context.Canceled {
				return nil, new(types.RequestCanceled)
			}
			return nil, nil
		case <-st.wake:
			time.Sleep(wfuSettle)
		}
	}
}

// full answers an empty version (every object of every filter) and its continuation pages
// ("S<snapshot>.<offset>"); the last page's version is the log position the state was read at.
func (st *wfuState) full(ctx *simulator.Context, version string, maxObjects int) (*types.UpdateSet, types.BaseMethodFault) {
	offset := 0
	if version == "" {
		if fault := st.step(ctx, false); fault != nil {
			return nil, fault
		}
		snap, fault := st.snapshot(ctx)
		if fault != nil {
			return nil, fault
		}
		st.snap = snap
	} else {
		var id int64
		if _, err := fmt.Sscanf(version, "S%d.%d", &id, &offset); err != nil || st.snap == nil || st.snap.id != id || offset > len(st.snap.entries) {
			return nil, new(types.InvalidCollectorVersion)
		}
	}
	entries := st.snap.entries[offset:]
	if maxObjects > 0 && len(entries) > maxObjects {
		return updateSet(entries[:maxObjects], fmt.Sprintf("S%d.%d", st.snap.id, offset+maxObjects), true), nil
	}
	set := updateSet(entries, strconv.FormatInt(st.snap.base, 10), false)
	st.snap = nil
	return set, nil
}

func (w *waiter) WaitForUpdatesEx(ctx *simulator.Context, r *types.WaitForUpdatesEx) soap.HasFault {
	body := &methods.WaitForUpdatesExBody{}
	set, fault := w.st.wait(ctx, r.Version, r.Options, wfuMaxObjectUpdates)
	if fault != nil {
		body.Fault_ = simulator.Fault("", fault)
		return body
	}
	body.Res = &types.WaitForUpdatesExResponse{Returnval: set}
	return body
}

// WaitForUpdates (deprecated) waits without limit and is never truncated.
func (w *waiter) WaitForUpdates(ctx *simulator.Context, r *types.WaitForUpdates) soap.HasFault {
	body := &methods.WaitForUpdatesBody{}
	for {
		set, fault := w.st.wait(ctx, r.Version, nil, 0)
		if fault != nil {
			body.Fault_ = simulator.Fault("", fault)
			return body
		}
		if set != nil {
			body.Res = &types.WaitForUpdatesResponse{Returnval: *set}
			return body
		}
	}
}

func (w *waiter) CancelWaitForUpdates(_ *simulator.Context, _ *types.CancelWaitForUpdates) soap.HasFault {
	w.st.mu.Lock()
	if w.st.cancel != nil {
		w.st.cancel()
	}
	w.st.mu.Unlock()
	return &methods.CancelWaitForUpdatesBody{Res: new(types.CancelWaitForUpdatesResponse)}
}

func (w *waiter) DestroyPropertyCollector(ctx *simulator.Context, r *types.DestroyPropertyCollector) soap.HasFault {
	w.st.close()
	wfuStates.Delete(w.pc)
	return w.pc.DestroyPropertyCollector(ctx, r)
}
