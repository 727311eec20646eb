package sim

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/view"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// checkEnums reports every enum-typed field (a govmomi type with a Strings method) under v that
// pyVmomi could not read: empty while required (no omitempty), or not one of the enum's values.
func checkEnums(t *testing.T, path string, v reflect.Value) {
	t.Helper()
	for _, p := range badEnums(path, v) {
		t.Errorf("%s", p)
	}
}

// badEnums lists the unreadable enum values under v, once each, by field path.
func badEnums(path string, v reflect.Value) []string {
	seen := map[string]bool{}
	var out []string
	add := func(s string) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	var walk func(path string, v reflect.Value, required bool, depth int)
	walk = func(path string, v reflect.Value, required bool, depth int) {
		if depth > 16 {
			return
		}
		switch v.Kind() {
		case reflect.Pointer, reflect.Interface:
			if !v.IsNil() {
				walk(path, v.Elem(), required, depth+1)
			}
		case reflect.Slice:
			for i := 0; i < v.Len(); i++ {
				walk(path+"[]", v.Index(i), true, depth+1)
			}
		case reflect.Struct:
			for i := 0; i < v.NumField(); i++ {
				f := v.Type().Field(i)
				if !f.IsExported() {
					continue
				}
				tag := strings.Split(f.Tag.Get("xml"), ",")
				name := path + "." + f.Name
				if f.Anonymous {
					name = path
				}
				walk(name, v.Field(i), !slices.Contains(tag[1:], "omitempty"), depth+1)
			}
		case reflect.String:
			m := v.MethodByName("Strings")
			if !m.IsValid() || v.Type() == reflect.TypeOf("") {
				return
			}
			s := v.String()
			if s == "" {
				if required {
					add(fmt.Sprintf("%s: required %s is empty", path, v.Type().Name()))
				}
				return
			}
			if !slices.Contains(m.Call(nil)[0].Interface().([]string), s) {
				add(fmt.Sprintf("%s: %q is not a %s", path, s, v.Type().Name()))
			}
		}
	}
	walk(path, v, true, 0)
	return out
}

// Every VM's runtime and summary read whole (as pyVmomi's vm.runtime / vm.summary and a
// ContainerView + PropertyCollector batch do) carry valid enum values, and summary.runtime is
// runtime: faultToleranceState, recordReplayState and bootTime (set while powered on, also in
// runtime) agree, for inventory VMs, a VM made later with CreateVM_Task, and across power-on and
// power-off.
func TestVMRuntimeSummaryWhole(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()

	ref := s.vmByName("ml-trainer-01")
	folder := object.NewFolder(c, *ref.Parent)
	pool := object.NewResourcePool(c, *ref.ResourcePool)
	task, err := folder.CreateVM(ctx, types.VirtualMachineConfigSpec{
		Name: "created-later", GuestId: "otherGuest64",
		Files: &types.VirtualMachineFileInfo{VmPathName: "[" + datastoreName + "]"},
	}, pool, object.NewHostSystem(c, *ref.Runtime.Host))
	if err != nil {
		t.Fatal(err)
	}
	info, err := task.WaitForResult(ctx)
	if err != nil {
		t.Fatal(err)
	}
	created := object.NewVirtualMachine(c, info.Result.(types.ManagedObjectReference))

	check := func(stage string) {
		t.Helper()
		m := view.NewManager(c)
		v, err := m.CreateContainerView(ctx, c.ServiceContent.RootFolder, []string{"VirtualMachine"}, true)
		if err != nil {
			t.Fatal(err)
		}
		defer v.Destroy(ctx)
		var vms []mo.VirtualMachine
		if err := v.Retrieve(ctx, []string{"VirtualMachine"}, []string{"name", "runtime", "summary"}, &vms); err != nil {
			t.Fatal(err)
		}
		if len(vms) < 10 {
			t.Fatalf("%s: %d VMs", stage, len(vms))
		}
		for _, vm := range vms {
			checkEnums(t, stage+" "+vm.Name+" runtime", reflect.ValueOf(vm.Runtime))
			checkEnums(t, stage+" "+vm.Name+" summary", reflect.ValueOf(vm.Summary))
			if !reflect.DeepEqual(vm.Runtime, vm.Summary.Runtime) {
				t.Errorf("%s %s: runtime %+v\nsummary.runtime %+v", stage, vm.Name, vm.Runtime, vm.Summary.Runtime)
			}
			on := vm.Runtime.PowerState == types.VirtualMachinePowerStatePoweredOn
			if on != (vm.Runtime.BootTime != nil) {
				t.Errorf("%s %s: %s with bootTime %v", stage, vm.Name, vm.Runtime.PowerState, vm.Runtime.BootTime)
			}
		}
	}
	check("loaded")
	for _, op := range []func(context.Context) (*object.Task, error){created.PowerOn, created.PowerOff} {
		task, err := op(ctx)
		if err == nil {
			err = task.Wait(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
		check("after power op")
	}
}

// Every managed object the inventory has, read whole (all properties, as pyVmomi does for an
// object's attributes), carries only enum values pyVmomi can read.
func TestWholeObjectsReadable(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	pc := property.DefaultCollector(c)
	kinds := []string{"Datacenter", "Folder", "ClusterComputeResource", "ComputeResource", "ResourcePool",
		"HostSystem", "VirtualMachine", "Datastore", "Network", "DistributedVirtualSwitch", "DistributedVirtualPortgroup",
		"HostNetworkSystem", "HostStorageSystem", "HostVirtualNicManager", "HostDatastoreSystem", "HostFirewallSystem",
		"HostPciPassthruSystem", "HostServiceSystem", "HostDateTimeSystem", "HostAutoStartManager", "HostVsanSystem"}
	for _, kind := range kinds {
		var refs []types.ManagedObjectReference
		for _, o := range s.Map.All(kind) {
			refs = append(refs, o.Reference())
		}
		if len(refs) == 0 {
			continue
		}
		var content []types.ObjectContent
		if err := pc.Retrieve(context.Background(), refs, nil, &content); err != nil {
			t.Errorf("%s: %v", kind, err)
			continue
		}
		seen := map[string]bool{}
		for _, oc := range content {
			obj, err := mo.ObjectContentToType(oc)
			if err != nil {
				t.Errorf("%s: %v", oc.Obj, err)
				continue
			}
			for _, p := range badEnums(kind, reflect.ValueOf(obj)) {
				if !seen[p] {
					seen[p] = true
					t.Errorf("%s (e.g. %s)", p, oc.Obj)
				}
			}
		}
	}
}
