package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func TestInjectFaultRefusesUnknownNames(t *testing.T) {
	_, srv := serveTest(t)
	for _, body := range []map[string]any{
		{"method": "Destroy_Task", "fault": "InvalidState"},
		{"method": "ReconfigVM_Task", "fault": "Whatever"},
		{"method": "ReconfigVM_Task"},
	} {
		raw, _ := json.Marshal(body)
		res, err := http.Post(srv.AdminURL+"/faults", "application/json", bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("%v: status %d, want 400", body, res.StatusCode)
		}
	}
}

func TestInjectedFaultFiresCountTimesThenTheCallWorks(t *testing.T) {
	s, srv := serveTest(t)
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	admin(t, srv, "POST", "/faults", InjectedFault{Method: "UpdatePassthruConfig", Fault: "HostConfigFault", Count: 2, Message: "disk full"}, nil)
	enable := types.HostPciPassthruConfig{Id: "0000:3b:00.0", PassthruEnabled: true}
	for i := 0; i < 2; i++ {
		err := updatePassthru(t, c, s, "esx-gpu-03.lab.local", enable)
		if err == nil || !soap.IsSoapFault(err) {
			t.Fatalf("call %d: want a SOAP fault, got %v", i+1, err)
		}
		got, ok := soap.ToSoapFault(err).VimFault().(types.HostConfigFault)
		if !ok || faultMessage(&got) != "disk full" {
			t.Fatalf("call %d: want HostConfigFault %q, got %#v", i+1, "disk full", got)
		}
	}
	if err := updatePassthru(t, c, s, "esx-gpu-03.lab.local", enable); err != nil {
		t.Fatalf("third call: %v", err)
	}
	var got struct{ Pending []InjectedFault }
	admin(t, srv, "GET", "/faults", nil, &got)
	if len(got.Pending) != 0 {
		t.Errorf("pending after firing: %+v", got.Pending)
	}
}

func TestInjectedConcurrentAccessEndsTheReconfigureTask(t *testing.T) {
	s, srv := serveTest(t)
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	admin(t, srv, "POST", "/faults", InjectedFault{Method: "ReconfigVM_Task", Fault: "ConcurrentAccess"}, nil)
	vm := object.NewVirtualMachine(c, s.vmByName("ml-trainer-01").Self)
	ctx := context.Background()
	spec := types.VirtualMachineConfigSpec{Annotation: "edited"}
	task, err := vm.Reconfigure(ctx, spec)
	if err != nil {
		t.Fatalf("the call itself must succeed (the task fails): %v", err)
	}
	err = task.Wait(ctx)
	if err == nil {
		t.Fatal("task succeeded despite the injected fault")
	}
	var te interface{ Fault() types.BaseMethodFault }
	if f, ok := err.(interface{ Fault() types.BaseMethodFault }); ok {
		te = f
	}
	if te == nil {
		t.Fatalf("want a task error, got %T %v", err, err)
	}
	if _, ok := te.Fault().(*types.ConcurrentAccess); !ok {
		t.Fatalf("want ConcurrentAccess, got %#v", te.Fault())
	}
	// The next reconfigure is not affected, and the failed one changed nothing.
	task, err = vm.Reconfigure(ctx, types.VirtualMachineConfigSpec{Annotation: "second"})
	if err != nil || task.Wait(ctx) != nil {
		t.Fatalf("second reconfigure: %v", err)
	}
}

func TestClearFaults(t *testing.T) {
	_, srv := serveTest(t)
	admin(t, srv, "POST", "/faults", InjectedFault{Method: "RetrievePropertiesEx", Fault: "SystemError", Count: 5}, nil)
	admin(t, srv, "DELETE", "/faults", nil, nil)
	var got struct{ Pending []InjectedFault }
	admin(t, srv, "GET", "/faults", nil, &got)
	if len(got.Pending) != 0 {
		t.Errorf("pending after DELETE: %+v", got.Pending)
	}
}
