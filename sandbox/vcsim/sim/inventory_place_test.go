package sim

import (
	"context"
	"strings"
	"testing"

	"github.com/vmware/govmomi/find"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// tenancyInventory: two VMs share a nested folder and pool path in a cluster, one repeats the
// pool path on a standalone host (a different root pool), one has neither key.
const tenancyInventory = `
datacenters:
  - name: DC1
    clusters:
      - name: C1
        hosts: [{name: h1, version: "8.0.2"}]
    hosts: [{name: h2, version: "8.0.2"}]
    vms:
      - {name: a, host: h1, folder: ml-team/prod, resourcePool: ml-team/batch}
      - {name: b, host: h1, folder: ml-team/prod, resourcePool: ml-team}
      - {name: c, host: h2, folder: ml-team, resourcePool: ml-team/batch}
      - {name: d, host: h1}
`

// newTenancySim serves tenancyInventory and returns a logged-in client and its finder.
func newTenancySim(t *testing.T) (*Simulator, *vim25.Client, *find.Finder) {
	t.Helper()
	inv, err := ParseInventory([]byte(tenancyInventory))
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(inv, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	c := connect(t, s).Client
	return s, c, find.NewFinder(c)
}

// children lists the inventory paths under path, as `govc ls 'PATH/*'` prints them (`govc ls`
// of a pool prints the pool itself: the finder doesn't traverse into pools without a pattern).
func children(t *testing.T, f *find.Finder, path string) []string {
	t.Helper()
	list, err := f.ManagedObjectList(context.Background(), path+"/*")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range list {
		names = append(names, e.Path)
	}
	return names
}

func count(names []string, want string) int {
	n := 0
	for _, s := range names {
		if s == want {
			n++
		}
	}
	return n
}

func TestLoadCreatesFoldersAndPoolsOnce(t *testing.T) {
	_, _, f := newTenancySim(t)
	for path, child := range map[string]string{
		"/DC1/vm":                        "/DC1/vm/ml-team",
		"/DC1/vm/ml-team":                "/DC1/vm/ml-team/prod",
		"/DC1/host/C1/Resources":         "/DC1/host/C1/Resources/ml-team",
		"/DC1/host/C1/Resources/ml-team": "/DC1/host/C1/Resources/ml-team/batch",
		"/DC1/host/h2/Resources":         "/DC1/host/h2/Resources/ml-team",
		"/DC1/host/h2/Resources/ml-team": "/DC1/host/h2/Resources/ml-team/batch",
	} {
		if n := count(children(t, f, path), child); n != 1 {
			t.Errorf("govc ls %s: %s listed %d times, want 1", path, child, n)
		}
	}
	if _, err := f.Folder(context.Background(), "/DC1/vm/ml-team/prod"); err != nil {
		t.Errorf("nested folder is not a Folder: %v", err)
	}
}

func TestLoadPlacesVMs(t *testing.T) {
	s, _, f := newTenancySim(t)
	ctx := context.Background()
	ref := func(path string) types.ManagedObjectReference {
		t.Helper()
		o, err := f.ManagedObjectList(ctx, path)
		if err != nil || len(o) != 1 {
			t.Fatalf("%s: %v (%d found)", path, err, len(o))
		}
		return o[0].Object.Reference()
	}
	for _, c := range []struct{ vm, folder, pool string }{
		{"a", "/DC1/vm/ml-team/prod", "/DC1/host/C1/Resources/ml-team/batch"},
		{"b", "/DC1/vm/ml-team/prod", "/DC1/host/C1/Resources/ml-team"},
		{"c", "/DC1/vm/ml-team", "/DC1/host/h2/Resources/ml-team/batch"},
		{"d", "/DC1/vm", "/DC1/host/C1/Resources"}, // no keys: root folder and root pool
	} {
		vm, err := f.VirtualMachine(ctx, c.folder+"/"+c.vm)
		if err != nil {
			t.Fatalf("%s: %v", c.vm, err)
		}
		var o mo.VirtualMachine
		if err := vm.Properties(ctx, vm.Reference(), []string{"parent", "resourcePool"}, &o); err != nil {
			t.Fatal(err)
		}
		if o.Parent == nil || *o.Parent != ref(c.folder) {
			t.Errorf("%s: parent = %v, want %s", c.vm, o.Parent, c.folder)
		}
		if o.ResourcePool == nil || *o.ResourcePool != ref(c.pool) {
			t.Errorf("%s: resourcePool = %v, want %s", c.vm, o.ResourcePool, c.pool)
		}
		// The pool lists its VM (ResourcePool.vm), so `govc ls POOL` shows it.
		pool := s.Map.Get(ref(c.pool)).(*simulator.ResourcePool)
		if simulator.FindReference(pool.Vm, vm.Reference()) == nil {
			t.Errorf("%s: pool %s does not list it", c.vm, c.pool)
		}
	}
}

func TestBadPlacementPaths(t *testing.T) {
	for _, bad := range []string{
		`folder: /ml-team`, `folder: ml-team/`, `folder: "a//b"`, `resourcePool: " /x"`,
	} {
		_, err := ParseInventory([]byte(`
datacenters:
  - name: DC1
    hosts: [{name: h1, version: "8.0.2"}]
    vms:
      - {name: a, host: h1, ` + bad + `}
`))
		if err == nil || !strings.Contains(err.Error(), `VM "a": bad `) {
			t.Errorf("%s: err = %v", bad, err)
		}
	}
}

// A pool path is always creatable, but it needs the host's root pool; a host outside any
// compute resource (which the loader never makes) is an error, not a panic.
func TestRootPoolNeedsComputeResource(t *testing.T) {
	h := &simulator.HostSystem{}
	h.Name = "lost.lab.local"
	_, err := rootPool(simulator.NewRegistry(), h)
	if err == nil || !strings.Contains(err.Error(), `host "lost.lab.local" has no compute resource`) {
		t.Errorf("err = %v", err)
	}
}
