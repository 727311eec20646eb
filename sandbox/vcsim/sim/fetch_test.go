package sim

import (
	"context"
	"encoding/xml"
	"testing"

	"github.com/vmware/govmomi/object"

	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The Fetch call as pyVmomi 9 sends it for an attribute read (vm.snapshot).
type testFetch struct {
	XMLName xml.Name                     `xml:"urn:vim25 Fetch"`
	This    types.ManagedObjectReference `xml:"_this"`
	Prop    string                       `xml:"prop"`
}

type testFetchBody struct {
	Req *testFetch `xml:"urn:vim25 Fetch,omitempty"`
	Res *struct {
		Returnval types.AnyType `xml:"returnval,omitempty,typeattr"`
	} `xml:"urn:vim25 FetchResponse,omitempty"`
	Fault_ *soap.Fault `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *testFetchBody) Fault() *soap.Fault { return b.Fault_ }

func fetch(t *testing.T, c *vim25.Client, obj types.ManagedObjectReference, prop string) (*testFetchBody, error) {
	t.Helper()
	body := &testFetchBody{Req: &testFetch{This: obj, Prop: prop}}
	err := c.RoundTrip(context.Background(), body, body)
	return body, err
}

// Fetch of an unset property answers a FetchResponse without returnval (pyVmomi: None), a set
// one its value, an unknown one a fault; upstream answered unset ones with a
// RetrievePropertiesExResponse.
func TestFetchUnsetProperty(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	vm := s.vmByName("ml-trainer-01")
	host := s.hostByName("esx-gpu-01.lab.local")
	for _, tc := range []struct {
		obj  types.ManagedObjectReference
		prop string
	}{
		{vm.Self, "snapshot"},
		{vm.Self, "alarmActionsEnabled"},
		{host.Self, "systemResources"},
	} {
		res, err := fetch(t, c, tc.obj, tc.prop)
		if err != nil {
			t.Fatalf("%s %s: %v", tc.obj, tc.prop, err)
		}
		if res.Res == nil {
			t.Errorf("%s %s: no FetchResponse", tc.obj, tc.prop)
		} else if res.Res.Returnval != nil {
			t.Errorf("%s %s: returnval %#v, want none", tc.obj, tc.prop, res.Res.Returnval)
		}
	}
	res, err := fetch(t, c, vm.Self, "name")
	if err != nil || res.Res == nil || res.Res.Returnval != "ml-trainer-01" {
		t.Errorf("name: %v %+v", err, res.Res)
	}
	if _, err := fetch(t, c, vm.Self, "noSuchProperty"); err == nil {
		t.Error("unknown property: no fault")
	}
	// The session's own PropertyCollector and its filters still work after a Fetch.
	done := watch(t, c, vm.Self, "name", func(v any) bool { return v == "renamed" })
	if _, err := fetch(t, c, vm.Self, "snapshot"); err != nil {
		t.Fatal(err)
	}
	task, err := object.NewVirtualMachine(c, vm.Self).Rename(context.Background(), "renamed")
	if err == nil {
		err = task.Wait(context.Background())
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Error(err)
	}
}
