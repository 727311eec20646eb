package sim

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The paths the operator's watch reads (operator/dpio/vsphere/watch.py, WATCH_PATHS).
var (
	watchHostPaths = []string{"name", "config.pciPassthruInfo", "summary.rebootRequired", "runtime.connectionState", "runtime.inMaintenanceMode"}
	watchVMPaths   = []string{"name", "config.hardware.device", "config.changeVersion", "rootSnapshot", "runtime.powerState", "runtime.host", "parent"}
)

type wfuClient struct {
	t   testing.TB
	c   *govmomi.Client
	ctx context.Context
	pc  types.ManagedObjectReference
}

func newWfuClient(t testing.TB, c *govmomi.Client) *wfuClient {
	t.Helper()
	ctx := context.Background()
	res, err := methods.CreatePropertyCollector(ctx, c.Client, &types.CreatePropertyCollector{This: c.ServiceContent.PropertyCollector})
	if err != nil {
		t.Fatal(err)
	}
	return &wfuClient{t: t, c: c, ctx: ctx, pc: res.Returnval}
}

// viewFilter is properties.view_filter: a ContainerView of hosts and VMs, the watch's paths.
func (w *wfuClient) viewFilter(hostPaths, vmPaths []string) types.ManagedObjectReference {
	w.t.Helper()
	v, err := view.NewManager(w.c.Client).CreateContainerView(w.ctx, w.c.ServiceContent.RootFolder, []string{"HostSystem", "VirtualMachine"}, true)
	if err != nil {
		w.t.Fatal(err)
	}
	return w.filter(types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{
			Obj:       v.Reference(),
			Skip:      types.NewBool(true),
			SelectSet: []types.BaseSelectionSpec{&types.TraversalSpec{Type: "ContainerView", Path: "view", Skip: types.NewBool(false)}},
		}},
		PropSet: []types.PropertySpec{{Type: "HostSystem", PathSet: hostPaths}, {Type: "VirtualMachine", PathSet: vmPaths}},
	})
}

func (w *wfuClient) filter(spec types.PropertyFilterSpec) types.ManagedObjectReference {
	w.t.Helper()
	res, err := methods.CreateFilter(w.ctx, w.c.Client, &types.CreateFilter{This: w.pc, Spec: spec, PartialUpdates: true})
	if err != nil {
		w.t.Fatal(err)
	}
	return res.Returnval
}

func (w *wfuClient) call(version string, maxWait *int32, maxObjects int32) (*types.UpdateSet, error) {
	res, err := methods.WaitForUpdatesEx(w.ctx, w.c.Client, &types.WaitForUpdatesEx{
		This: w.pc, Version: version,
		Options: &types.WaitOptions{MaxWaitSeconds: maxWait, MaxObjectUpdates: maxObjects},
	})
	if err != nil {
		return nil, err
	}
	return res.Returnval, nil
}

// wait calls WaitForUpdatesEx once (maxWait seconds, 0: one calculation).
func (w *wfuClient) wait(version string, maxWait int32, maxObjects int32) *types.UpdateSet {
	w.t.Helper()
	set, err := w.call(version, &maxWait, maxObjects)
	if err != nil {
		w.t.Fatal(err)
	}
	return set
}

// drain follows truncated answers to the end: every object update and the final version.
func (w *wfuClient) drain(version string, maxWait int32, maxObjects int32) ([]types.ObjectUpdate, string) {
	w.t.Helper()
	var all []types.ObjectUpdate
	for {
		set := w.wait(version, maxWait, maxObjects)
		if set == nil {
			return all, version
		}
		for _, f := range set.FilterSet {
			all = append(all, f.ObjectSet...)
		}
		version = set.Version
		if set.Truncated == nil || !*set.Truncated {
			return all, version
		}
	}
}

// until waits (up to 10 s) for an update of obj carrying the property `name`.
func (w *wfuClient) until(version string, obj types.ManagedObjectReference, name string) ([]types.ObjectUpdate, string) {
	w.t.Helper()
	var seen []types.ObjectUpdate
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		updates, v := w.drain(version, 1, 0)
		version = v
		seen = append(seen, updates...)
		for _, u := range updates {
			if u.Obj == obj && (name == "" || changeOf(u, name) != nil) {
				return seen, version
			}
		}
	}
	w.t.Fatalf("no update of %s %s in 10 s; saw %v", obj, name, seen)
	return nil, ""
}

func changeOf(u types.ObjectUpdate, name string) *types.PropertyChange {
	for i := range u.ChangeSet {
		if u.ChangeSet[i].Name == name {
			return &u.ChangeSet[i]
		}
	}
	return nil
}

func updatesOf(updates []types.ObjectUpdate, obj types.ManagedObjectReference) []types.ObjectUpdate {
	var out []types.ObjectUpdate
	for _, u := range updates {
		if u.Obj == obj {
			out = append(out, u)
		}
	}
	return out
}

func names(u types.ObjectUpdate) string {
	var n []string
	for _, c := range u.ChangeSet {
		n = append(n, c.Name)
	}
	return strings.Join(n, ",")
}

// isFault: err is a SOAP fault of this vim type (e.g. "InvalidCollectorVersion").
func isFault(err error, kind string) bool {
	if err == nil || !soap.IsSoapFault(err) {
		return false
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", soap.ToSoapFault(err).VimFault()), "*") == "types."+kind
}

func (w *wfuClient) rename(ref types.ManagedObjectReference, name string) {
	w.t.Helper()
	task, err := object.NewCommon(w.c.Client, ref).Rename(w.ctx, name)
	if err == nil {
		err = task.Wait(w.ctx)
	}
	if err != nil {
		w.t.Fatal(err)
	}
}

func TestWaitForUpdatesEmptyVersionReportsEverything(t *testing.T) {
	s := newTestSim(t)
	w := newWfuClient(t, connect(t, s))
	w.viewFilter(watchHostPaths, watchVMPaths)
	want := len(s.hosts) + len(s.Map.All("VirtualMachine"))

	for round := 0; round < 2; round++ { // an empty version always gets the whole state
		updates, version := w.drain("", 0, 3)
		if len(updates) != want {
			t.Fatalf("round %d: %d objects, want %d", round, len(updates), want)
		}
		for _, u := range updates {
			if u.Kind != types.ObjectUpdateKindEnter || changeOf(u, "name") == nil {
				t.Fatalf("round %d: %s %s (%s), want enter with name", round, u.Obj, u.Kind, names(u))
			}
		}
		if version == "" || strings.HasPrefix(version, "S") {
			t.Fatalf("round %d: final version %q", round, version)
		}
		if set := w.wait(version, 0, 0); set != nil {
			t.Fatalf("round %d: changes after the full state: %+v", round, set)
		}
	}
}

func TestWaitForUpdatesModifyReportsOnlyWhatChanged(t *testing.T) {
	s := newTestSim(t)
	w := newWfuClient(t, connect(t, s))
	w.viewFilter(watchHostPaths, append(watchVMPaths, "runtime"))
	_, version := w.drain("", 0, 0)

	vm := s.vmByName("web-01").Reference()
	w.rename(vm, "web-01-renamed")
	updates, version := w.until(version, vm, "name")
	for _, u := range updatesOf(updates, vm) {
		if u.Kind != types.ObjectUpdateKindModify || names(u) != "name" {
			t.Errorf("rename: %s %s, want modify name", u.Kind, names(u))
		}
		if c := changeOf(u, "name"); c.Val != "web-01-renamed" || c.Op != types.PropertyChangeOpAssign {
			t.Errorf("rename: %+v", c)
		}
	}

	// A change inside a watched path reports the path ("runtime.powerState"), and a path that
	// contains it ("runtime") whole, with current values.
	task, err := object.NewVirtualMachine(w.c.Client, vm).PowerOff(w.ctx)
	if err == nil {
		err = task.Wait(w.ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	updates, _ = w.until(version, vm, "runtime.powerState")
	var got types.ObjectUpdate
	for _, u := range updatesOf(updates, vm) {
		if changeOf(u, "runtime.powerState") != nil {
			got = u
		}
	}
	if c := changeOf(got, "runtime.powerState"); c.Val != types.VirtualMachinePowerStatePoweredOff {
		t.Errorf("runtime.powerState = %v", c.Val)
	}
	if c := changeOf(got, "runtime"); c == nil {
		t.Errorf("no runtime in %s", names(got))
	} else if rt, ok := c.Val.(types.VirtualMachineRuntimeInfo); !ok || rt.PowerState != types.VirtualMachinePowerStatePoweredOff {
		t.Errorf("runtime = %#v", c.Val)
	}
	if changeOf(got, "name") != nil {
		t.Errorf("unchanged name reported again: %s", names(got))
	}
}

func TestWaitForUpdatesEnterAndLeave(t *testing.T) {
	s := newTestSim(t)
	w := newWfuClient(t, connect(t, s))
	w.viewFilter(watchHostPaths, watchVMPaths)
	_, version := w.drain("", 0, 0)

	vm := object.NewVirtualMachine(w.c.Client, s.vmByName("snap-vm-01").Reference())
	folder := object.NewFolder(w.c.Client, *s.vmByName("snap-vm-01").Parent)
	task, err := vm.Clone(w.ctx, folder, "clone-01", types.VirtualMachineCloneSpec{})
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(w.ctx)
	if err != nil {
		t.Fatal(err)
	}
	clone := info.Result.(types.ManagedObjectReference)
	updates, version := w.until(version, clone, "")
	enter := updatesOf(updates, clone)[0]
	if enter.Kind != types.ObjectUpdateKindEnter || changeOf(enter, "name") == nil || changeOf(enter, "name").Val != "clone-01" {
		t.Fatalf("clone: %s %s", enter.Kind, names(enter))
	}

	task, err = object.NewVirtualMachine(w.c.Client, clone).Destroy(w.ctx)
	if err == nil {
		err = task.Wait(w.ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	updates, _ = w.until(version, clone, "")
	leave := updatesOf(updates, clone)
	if len(leave) != 1 || leave[0].Kind != types.ObjectUpdateKindLeave || len(leave[0].ChangeSet) != 0 {
		t.Fatalf("destroy: %+v", leave)
	}
}

func TestWaitForUpdatesVersions(t *testing.T) {
	s := newTestSim(t)
	w := newWfuClient(t, connect(t, s))
	w.viewFilter(watchHostPaths, watchVMPaths)
	_, v0 := w.drain("", 0, 0)

	a, b := s.vmByName("web-01").Reference(), s.vmByName("snap-vm-01").Reference()
	w.rename(a, "a")
	_, v1 := w.until(v0, a, "name")
	w.rename(b, "b")
	_, v2 := w.until(v1, b, "name")

	// An older version gets everything since: the answer to v1 was lost, v0 is asked again.
	updates, v := w.drain(v0, 0, 0)
	if v != v2 || len(updatesOf(updates, a)) != 1 || len(updatesOf(updates, b)) != 1 {
		t.Fatalf("since v0: version %s (want %s), %d updates", v, v2, len(updates))
	}
	if set := w.wait(v2, 0, 0); set != nil {
		t.Fatalf("nothing changed since %s: %+v", v2, set)
	}
	for _, bad := range []string{"999999", "x"} {
		if _, err := w.call(bad, types.NewInt32(0), 0); !isFault(err, "InvalidCollectorVersion") {
			t.Errorf("version %q: %v, want InvalidCollectorVersion", bad, err)
		}
	}
}

func TestWaitForUpdatesTruncation(t *testing.T) {
	s := newTestSim(t)
	w := newWfuClient(t, connect(t, s))
	w.viewFilter(watchHostPaths, watchVMPaths)
	_, version := w.drain("", 0, 0)

	var vms []types.ManagedObjectReference
	for _, name := range []string{"web-01", "snap-vm-01", "hotadd-vm-01", "nested-vm-01", "ml-trainer-01"} {
		vm := s.vmByName(name).Reference()
		vms = append(vms, vm)
		w.rename(vm, name+"-x")
	}
	time.Sleep(50 * time.Millisecond)
	renamed := map[types.ManagedObjectReference]bool{}
	for page := 0; ; page++ {
		set := w.wait(version, 1, 2)
		n := 0
		for _, f := range set.FilterSet {
			n += len(f.ObjectSet)
			for _, u := range f.ObjectSet {
				if c := changeOf(u, "name"); c != nil && strings.HasSuffix(c.Val.(string), "-x") {
					renamed[u.Obj] = true
				}
			}
		}
		if n > 2 {
			t.Fatalf("page %d: %d updates, MaxObjectUpdates 2", page, n)
		}
		version = set.Version
		if set.Truncated == nil || !*set.Truncated {
			break
		}
		if page > 10 {
			t.Fatal("no end to truncated answers")
		}
	}
	for _, vm := range vms {
		if !renamed[vm] {
			t.Errorf("rename of %s not reported", vm)
		}
	}
}

func TestWaitForUpdatesFilters(t *testing.T) {
	s := newTestSim(t)
	w := newWfuClient(t, connect(t, s))
	hostFilter := w.viewFilter(watchHostPaths, nil)
	_, version := w.drain("", 0, 0)

	// A filter created later reports its objects as enter at the next wait, under its own ref.
	vm := s.vmByName("web-01").Reference()
	vmFilter := w.filter(types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: vm}},
		PropSet:   []types.PropertySpec{{Type: "VirtualMachine", PathSet: []string{"name"}}},
	})
	set := w.wait(version, 1, 0)
	if len(set.FilterSet) != 1 || set.FilterSet[0].Filter != vmFilter || len(set.FilterSet[0].ObjectSet) != 1 ||
		set.FilterSet[0].ObjectSet[0].Kind != types.ObjectUpdateKindEnter {
		t.Fatalf("new filter: %+v", set)
	}
	version = set.Version

	// Each change goes to the filter that reads it.
	host := s.hosts["esx-gpu-01.lab.local"]
	bg := s.newBG()
	s.Map.WithLock(bg, host, func() { // what a passthrough change does
		bg.Update(host, []types.PropertyChange{{Name: "summary.rebootRequired", Val: true}})
	})
	w.rename(vm, "vm-renamed")
	time.Sleep(50 * time.Millisecond)
	got := map[types.ManagedObjectReference]types.ManagedObjectReference{}
	for len(got) < 2 {
		set = w.wait(version, 2, 0)
		if set == nil {
			t.Fatalf("missing updates, got %v", got)
		}
		for _, f := range set.FilterSet {
			for _, u := range f.ObjectSet {
				got[u.Obj] = f.Filter
			}
		}
		version = set.Version
	}
	if got[host.Reference()] != hostFilter || got[vm] != vmFilter {
		t.Errorf("updates by filter: %v", got)
	}

	// A destroyed filter reports nothing more.
	if _, err := methods.DestroyPropertyFilter(w.ctx, w.c.Client, &types.DestroyPropertyFilter{This: vmFilter}); err != nil {
		t.Fatal(err)
	}
	w.rename(vm, "vm-renamed-again")
	time.Sleep(50 * time.Millisecond)
	if set := w.wait(version, 0, 0); set != nil {
		t.Fatalf("destroyed filter: %+v", set)
	}
}

func TestWaitForUpdatesCancel(t *testing.T) {
	s := newTestSim(t)
	w := newWfuClient(t, connect(t, s))
	w.viewFilter(watchHostPaths, watchVMPaths)
	_, version := w.drain("", 0, 0)
	done := make(chan error, 1)
	go func() {
		_, err := w.call(version, types.NewInt32(30), 0)
		done <- err
	}()
	time.Sleep(200 * time.Millisecond)
	if _, err := methods.CancelWaitForUpdates(w.ctx, w.c.Client, &types.CancelWaitForUpdates{This: w.pc}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !isFault(err, "RequestCanceled") {
			t.Fatalf("canceled wait: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CancelWaitForUpdates did not end the wait")
	}
	if _, err := methods.DestroyPropertyCollector(w.ctx, w.c.Client, &types.DestroyPropertyCollector{This: w.pc}); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkWaitForUpdates625 measures how late WaitForUpdatesEx reports a change with 625
// hosts (4 GPUs each) and 625 VMs under the operator's watch filter: one VM rename (a task
// enters and changes, then the VM's name), and a burst of 50 renames. "upstream" is govmomi's
// simulator; "incremental" is waitforupdates.go. Run with
//
//	cd sandbox/vcsim && go test ./sim -run '^$' -bench WaitForUpdates625 -benchtime 5x
//
// s/reported is the time from the first rename until every renamed VM's name is reported (the
// renames included); s/initial the first, full answer. The upstream burst takes minutes;
// DPIO_WFU_BENCH=incremental (or upstream) runs one side only, DPIO_WFU_BURST=1 one burst.
func BenchmarkWaitForUpdates625(b *testing.B) {
	inv := Generate(GenerateOptions{Hosts: 625, DevicesPerHost: 4, VMs: 625, Clusters: 25})
	for _, impl := range []string{"upstream", "incremental"} {
		if only := os.Getenv("DPIO_WFU_BENCH"); only != "" && only != impl {
			continue
		}
		for _, burst := range []int{1, 50} {
			if only := os.Getenv("DPIO_WFU_BURST"); only != "" && only != fmt.Sprint(burst) {
				continue
			}
			b.Run(fmt.Sprintf("%s/burst=%d", impl, burst), func(b *testing.B) {
				incrementalWaitForUpdates.Store(impl == "incremental")
				defer incrementalWaitForUpdates.Store(true)
				s, err := New(inv, Options{})
				if err != nil {
					b.Fatal(err)
				}
				defer s.Close()
				w := newWfuClient(b, connect(b, s))
				w.viewFilter(watchHostPaths, watchVMPaths)
				start := time.Now()
				_, version := w.drain("", 0, 0)
				initial := time.Since(start)
				vms := s.Map.All("VirtualMachine")
				b.ResetTimer()
				var total time.Duration
				for i := 0; i < b.N; i++ {
					start := time.Now()
					want := map[types.ManagedObjectReference]bool{}
					for j := 0; j < burst; j++ {
						vm := vms[(i*burst+j)%len(vms)].Reference()
						want[vm] = true
						w.rename(vm, fmt.Sprintf("bench-%d-%d", i, j))
					}
					for len(want) > 0 {
						updates, v := w.drain(version, 600, 0)
						version = v
						for _, u := range updates {
							if changeOf(u, "name") != nil {
								delete(want, u.Obj)
							}
						}
					}
					total += time.Since(start)
				}
				b.StopTimer() // not the simulator's Close
				b.ReportMetric(total.Seconds()/float64(b.N), "s/reported")
				b.ReportMetric(initial.Seconds(), "s/initial")
			})
		}
	}
}

func TestWaitForUpdatesLogKeepsRecentAcknowledged(t *testing.T) {
	st := newWfuState(nil)
	f := types.ManagedObjectReference{Type: "PropertyFilter", Value: "f"}
	st.filters[f] = &wfuFilter{ref: f}
	for i := 0; i < wfuKeepAcked+500; i++ {
		st.append(f, types.ObjectUpdate{Kind: types.ObjectUpdateKindModify})
	}
	st.acked(st.seq - 10) // the client holds a version 10 updates old
	if len(st.log) != wfuKeepAcked+10 {
		t.Fatalf("log holds %d, want %d", len(st.log), wfuKeepAcked+10)
	}
	if got := len(st.since(st.seq - 20)); got != 20 {
		t.Errorf("since an older version: %d updates, want 20", got)
	}
	if st.trimmed != st.log[0].seq-1 {
		t.Errorf("trimmed %d, first kept %d", st.trimmed, st.log[0].seq)
	}
}

// A collector nobody waits on stops collecting changes past wfuMaxDirty; the next wait then
// reports every object with its current values.
func TestWaitForUpdatesOverflowRereadsEverything(t *testing.T) {
	defer func(n int) { wfuMaxDirty = n }(wfuMaxDirty)
	wfuMaxDirty = 2
	s := newTestSim(t)
	w := newWfuClient(t, connect(t, s))
	w.viewFilter(watchHostPaths, watchVMPaths)
	all, version := w.drain("", 0, 0)

	vm := s.vmByName("web-01").Reference()
	w.rename(vm, "after-overflow") // a task and the VM: more than 2 objects
	updates, _ := w.drain(version, 0, 0)
	if len(updates) != len(all) {
		t.Fatalf("after overflow: %d updates, want every object (%d)", len(updates), len(all))
	}
	for _, u := range updatesOf(updates, vm) {
		if u.Kind != types.ObjectUpdateKindModify || changeOf(u, "name").Val != "after-overflow" {
			t.Errorf("vm after overflow: %s %s", u.Kind, names(u))
		}
	}
}

// Injected faults (admin /faults) still come before the incremental WaitForUpdatesEx.
func TestWaitForUpdatesInjectedFaultFirst(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s)
	if err := s.InjectFault(InjectedFault{Method: "WaitForUpdatesEx", Fault: "SystemError", Count: 1}); err != nil {
		t.Fatal(err)
	}
	w := &wfuClient{t: t, c: c, ctx: context.Background(), pc: c.ServiceContent.PropertyCollector}
	w.viewFilter(watchHostPaths, watchVMPaths)
	if _, err := w.call("", types.NewInt32(0), 0); !isFault(err, "SystemError") {
		t.Fatalf("first wait: %v, want the injected SystemError", err)
	}
	if updates, _ := w.drain("", 0, 0); len(updates) == 0 {
		t.Fatal("no full state after the injected fault")
	}
}

// The operator's watch is one filter of two sets: a ContainerView of hosts and VMs, and the
// TaskManager's recentTask. A task created changes the second; recomputing the first (5,625
// objects at 5,000 VMs) for each task was 45% of the simulator's CPU (finding 25).
func TestWaitForUpdatesATaskRecomputesOnlyTheSetThatFollowsTasks(t *testing.T) {
	s, err := New(Generate(GenerateOptions{Hosts: 20, DevicesPerHost: 1, VMs: 40, Clusters: 2}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := connect(t, s)
	w := newWfuClient(t, c)
	v, err := view.NewManager(c.Client).CreateContainerView(w.ctx, c.ServiceContent.RootFolder, []string{"HostSystem", "VirtualMachine"}, true)
	if err != nil {
		t.Fatal(err)
	}
	w.filter(types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{
			{Obj: v.Reference(), Skip: types.NewBool(true), SelectSet: []types.BaseSelectionSpec{
				&types.TraversalSpec{Type: "ContainerView", Path: "view", Skip: types.NewBool(false)}}},
			{Obj: *c.ServiceContent.TaskManager, Skip: types.NewBool(true), SelectSet: []types.BaseSelectionSpec{
				&types.TraversalSpec{Type: "TaskManager", Path: "recentTask", Skip: types.NewBool(false)}}},
		},
		PropSet: []types.PropertySpec{
			{Type: "HostSystem", PathSet: watchHostPaths},
			{Type: "VirtualMachine", PathSet: watchVMPaths},
			{Type: "Task", PathSet: []string{"info.state", "info.error"}},
		},
	})
	initial, version := w.drain("", 0, 0)
	if len(initial) < 60 {
		t.Fatalf("the first answer has %d objects, want the 20 hosts and 40 VMs", len(initial))
	}
	before := recollected("VirtualMachine")
	vms := s.Map.All("VirtualMachine")
	var seen []types.ObjectUpdate
	for i := 0; i < 5; i++ {
		vm := vms[i].Reference()
		w.rename(vm, fmt.Sprintf("renamed-%d", i))
		var updates []types.ObjectUpdate
		updates, version = w.until(version, vm, "name")
		seen = append(seen, updates...)
	}
	tasks := 0
	for _, u := range seen {
		if u.Obj.Type == "Task" && u.Kind == types.ObjectUpdateKindEnter {
			tasks++
		}
	}
	if tasks == 0 {
		t.Fatalf("no task entered the filter: %v", seen)
	}
	// Each task recomputes the task set (the recent tasks); the 40 VMs are not read again.
	if read := recollected("VirtualMachine") - before; read != 0 {
		t.Fatalf("5 tasks read %d VMs again: the ContainerView set was recomputed", read)
	}
}

// govc's task waits (view.TaskView) follow a ListView's "view", and a ListView lives in the
// session's registry, not the inventory's: a task added to the view must enter the filter.
// The first per-set recomputation looked the ListView up in the inventory, found nothing and
// never recomputed the set (govc `tasks` and `events` hung in the conformance suite).
func TestWaitForUpdatesFollowsASessionListView(t *testing.T) {
	s, err := New(Generate(GenerateOptions{Hosts: 2, DevicesPerHost: 1, VMs: 2, Clusters: 1}), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c := connect(t, s)
	w := newWfuClient(t, c)
	list, err := view.NewManager(c.Client).CreateListView(w.ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.filter(types.PropertyFilterSpec{
		ObjectSet: []types.ObjectSpec{{Obj: list.Reference(), Skip: types.NewBool(true), SelectSet: []types.BaseSelectionSpec{
			&types.TraversalSpec{Type: "ListView", Path: "view", Skip: types.NewBool(false)}}}},
		PropSet: []types.PropertySpec{{Type: "Task", PathSet: []string{"info.state"}}},
	})
	initial, version := w.drain("", 0, 0)
	if len(initial) != 0 {
		t.Fatalf("an empty list view selects %v", initial)
	}
	vm := s.Map.All("VirtualMachine")[0].Reference()
	task, err := object.NewCommon(c.Client, vm).Rename(w.ctx, "renamed")
	if err != nil {
		t.Fatal(err)
	}
	// A step between the task's creation and its addition: the task entered the inventory
	// but not yet the view, so only the view's change can bring it into the filter.
	_, version = w.drain(version, 0, 0)
	if _, err := list.Add(w.ctx, []types.ManagedObjectReference{task.Reference()}); err != nil {
		t.Fatal(err)
	}
	updates, _ := w.until(version, task.Reference(), "info.state")
	if u := updatesOf(updates, task.Reference()); len(u) == 0 || u[0].Kind != types.ObjectUpdateKindEnter {
		t.Fatalf("the task added to the list view did not enter the filter: %v", updates)
	}
}
