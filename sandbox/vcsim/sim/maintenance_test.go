package sim

import (
	"context"
	"testing"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func hostObj(c *vim25.Client, s *Simulator, name string) *object.HostSystem {
	return object.NewHostSystem(c, s.Host(name).Self)
}

func hostRuntime(t *testing.T, c *vim25.Client, s *Simulator, name string) mo.HostSystem {
	t.Helper()
	var h mo.HostSystem
	err := property.DefaultCollector(c).RetrieveOne(context.Background(), s.Host(name).Self,
		[]string{"runtime", "vm", "summary.rebootRequired", "config.pciPassthruInfo"}, &h)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func vmByName(t *testing.T, c *vim25.Client, s *Simulator, name string) *object.VirtualMachine {
	return object.NewVirtualMachine(c, s.vmByName(name).Self)
}

func taskFault(err error) types.BaseMethodFault {
	if te, ok := err.(task_error); ok {
		return te.Fault()
	}
	if soap.IsSoapFault(err) {
		return soap.ToSoapFault(err).VimFault().(types.BaseMethodFault)
	}
	return nil
}

type task_error interface{ Fault() types.BaseMethodFault }

func TestMaintenanceModeWaitsForPassthroughVM(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	const name = "esx-gpu-01.lab.local"
	host := hostObj(c, s, name)

	// ml-inference-01 runs with an A100 and can't be migrated: the drain times out. Meanwhile
	// DRS (fully automated) moves web-01, which has no passthrough device.
	task, err := host.EnterMaintenanceMode(ctx, 1, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = task.Wait(ctx)
	if _, ok := taskFault(err).(*types.Timedout); !ok {
		t.Fatalf("want Timedout, got %v", err)
	}
	h := hostRuntime(t, c, s, name)
	if h.Runtime.InMaintenanceMode {
		t.Fatal("host entered maintenance mode with a running passthrough VM")
	}
	web := s.vmByName("web-01")
	if *web.Runtime.Host == s.Host(name).Self {
		t.Error("web-01 should have been migrated by DRS")
	}
	for _, ref := range h.Vm {
		if ref == web.Self {
			t.Error("web-01 still listed on the host")
		}
	}

	// Watch runtime.inMaintenanceMode while the VM is powered off and the host drains.
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	seen := make(chan error, 1)
	go func() {
		seen <- property.Wait(wctx, property.DefaultCollector(c), s.Host(name).Self, []string{"runtime.inMaintenanceMode"},
			func(ch []types.PropertyChange) bool { return len(ch) > 0 && ch[0].Val == true })
	}()
	task, err = host.EnterMaintenanceMode(ctx, 0, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	off, err := vmByName(t, c, s, "ml-inference-01").PowerOff(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := off.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx); err != nil {
		t.Fatalf("enter maintenance mode: %v", err)
	}
	if err := <-seen; err != nil {
		t.Fatalf("watcher missed inMaintenanceMode: %v", err)
	}

	task, err = host.ExitMaintenanceMode(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if hostRuntime(t, c, s, name).Runtime.InMaintenanceMode {
		t.Error("still in maintenance mode after exit")
	}
}

func TestMaintenanceModeStandaloneHost(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	// Only a powered-off VM: nothing blocks, evacuation of powered-off VMs not requested.
	task, err := hostObj(c, s, "esx-standalone-01.lab.local").EnterMaintenanceMode(ctx, 5, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if !hostRuntime(t, c, s, "esx-standalone-01.lab.local").Runtime.InMaintenanceMode {
		t.Error("not in maintenance mode")
	}
}
