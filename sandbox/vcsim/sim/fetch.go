package sim

import (
	"reflect"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// PropertyCollector.Fetch (the one-property read pyVmomi 9 uses for every attribute access,
// e.g. `vm.snapshot`) answered by vCenter with a FetchResponse; an unset property is a
// FetchResponse without returnval, which pyVmomi turns into None.
//
// Upstream (simulator/property_collector.go, PropertyCollector.Fetch) converts the call to a
// RetrievePropertiesEx and, when the object comes back with an empty propSet and no missingSet
// (the property exists but is unset: vm.snapshot without snapshots, vm.resourceConfig,
// entity.alarmActionsEnabled, host.systemResources, ...), returns that RetrievePropertiesEx
// body as the answer: the client gets a <RetrievePropertiesExResponse> where it expects a
// <FetchResponse> and fails. fetcher delegates to the upstream method and replaces exactly that
// answer with an empty FetchResponse.
//
// Wiring: the simulator redirects every Fetch to the PropertyCollector singleton
// (simulator.go, Service.ServeSDK). For a call with a session it then takes the handler from
// the session's registry, which holds that session's own PropertyCollector (with its filters),
// so the usual override routing (routeSession) must not replace it. dispatch instead points the
// call at fetchRef, a reference no registry holds: Session.Get finds nothing for it and the
// call keeps the fetcher that dispatch returned.
type fetcher struct {
	pc *simulator.PropertyCollector
}

var fetchRef = types.ManagedObjectReference{Type: "DpioFetch", Value: "dpio-fetch"}

func (f *fetcher) Reference() types.ManagedObjectReference { return fetchRef }

// fetchResponse is the wire shape of FetchResponse (the simulator's own type is in an internal
// package): returnval is omitted when nil, as vCenter sends an unset property.
type fetchResponse struct {
	Returnval types.AnyType `xml:"returnval,omitempty,typeattr"`
}

type fetchBody struct {
	Res    *fetchResponse `xml:"FetchResponse,omitempty"`
	Fault_ *soap.Fault    `xml:"http://schemas.xmlsoap.org/soap/envelope/ Fault,omitempty"`
}

func (b *fetchBody) Fault() *soap.Fault { return b.Fault_ }

// Fetch takes the request as `any`: its type (*internal.Fetch) can't be named outside govmomi,
// and the simulator passes it by reflection, which accepts an interface parameter.
func (f *fetcher) Fetch(ctx *simulator.Context, req any) soap.HasFault {
	out := reflect.ValueOf(f.pc).MethodByName("Fetch").Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(req)})
	res := out[0].Interface().(soap.HasFault)
	if res.Fault() != nil {
		return res
	}
	if _, ok := res.(*methods.RetrievePropertiesExBody); ok {
		return &fetchBody{Res: &fetchResponse{}}
	}
	return res
}

// fetchHandler is dispatch's answer for a Fetch call (see fetcher).
func fetchHandler(ctx *simulator.Context, method *simulator.Method) *fetcher {
	pc, ok := ctx.Map.Get(method.This).(*simulator.PropertyCollector) // already redirected to the singleton
	if !ok {
		return nil
	}
	method.This = fetchRef
	return &fetcher{pc: pc}
}
