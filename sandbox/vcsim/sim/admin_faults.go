package sim

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"sync"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Fault injection (admin POST /faults): the next `count` calls of a method fail with a chosen
// vSphere fault, as vCenter reports it. A synchronous method (UpdatePassthruConfig,
// RetrievePropertiesEx, ...) answers with the SOAP fault; ReconfigVM_Task returns a task that
// ends in the fault, which is how vCenter reports a stale changeVersion (ConcurrentAccess,
// vSphere API reference, VirtualMachineConfigSpec.changeVersion) or a host that went away.
//
// The override is registered in init() of this file, which Go runs before the other files'
// (files are initialised in name order), so an injected fault wins over every other override.

// FaultMethods are the methods faults can be injected into.
var FaultMethods = []string{
	"UpdatePassthruConfig", "RetrievePropertiesEx", "WaitForUpdatesEx", "QueryConfigTarget",
	"QueryConfigOption", "ReconfigVM_Task", "PowerOnVM_Task", "PowerOffVM_Task", "ShutdownGuest",
	"RebootHost_Task", "EnterMaintenanceMode_Task", "ExitMaintenanceMode_Task",
	"ReconfigureComputeResource_Task",
}

// faultKinds builds each injectable fault with vCenter's message for it.
var faultKinds = map[string]func(message string) types.BaseMethodFault{
	"ConcurrentAccess": func(m string) types.BaseMethodFault { return withMessage(&types.ConcurrentAccess{}, m) },
	"HostConfigFault":  func(m string) types.BaseMethodFault { return withMessage(&types.HostConfigFault{}, m) },
	"InvalidState":     func(m string) types.BaseMethodFault { return withMessage(&types.InvalidState{}, m) },
	"TaskInProgress":   func(m string) types.BaseMethodFault { return withMessage(&types.TaskInProgress{}, m) },
	"HostCommunication": func(m string) types.BaseMethodFault {
		return withMessage(&types.HostCommunication{}, m)
	},
	"SystemError": func(m string) types.BaseMethodFault {
		return withMessage(&types.SystemError{Reason: m}, m)
	},
}

func withMessage[F types.BaseMethodFault](f F, message string) types.BaseMethodFault {
	f.GetMethodFault().FaultMessage = []types.LocalizableMessage{{Key: "dpio.vcsim.injected", Message: message}}
	return f
}

// InjectedFault is one entry of POST /faults.
type InjectedFault struct {
	Method  string `json:"method"`
	Fault   string `json:"fault"`
	Count   int    `json:"count"`
	Message string `json:"message,omitempty"`
}

type faultInjector struct {
	mu      sync.Mutex
	pending map[string][]InjectedFault // by method, in the order they fire
}

var injectors sync.Map // *Simulator -> *faultInjector

func injectorOf(s *Simulator) *faultInjector {
	v, _ := injectors.LoadOrStore(s, &faultInjector{pending: map[string][]InjectedFault{}})
	return v.(*faultInjector)
}

// InjectFault queues f; it checks the method and fault names.
func (s *Simulator) InjectFault(f InjectedFault) error {
	if !contains(FaultMethods, f.Method) {
		return fmt.Errorf("method %q: faults can be injected into %v", f.Method, FaultMethods)
	}
	if _, ok := faultKinds[f.Fault]; !ok {
		return fmt.Errorf("fault %q: one of %v", f.Fault, faultNames())
	}
	if f.Count <= 0 {
		f.Count = 1
	}
	if f.Message == "" {
		f.Message = fmt.Sprintf("%s injected by dpio-vcsim", f.Fault)
	}
	in := injectorOf(s)
	in.mu.Lock()
	in.pending[f.Method] = append(in.pending[f.Method], f)
	in.mu.Unlock()
	return nil
}

// PendingFaults lists what is still to fire; ClearFaults drops it.
func (s *Simulator) PendingFaults() []InjectedFault {
	in := injectorOf(s)
	in.mu.Lock()
	defer in.mu.Unlock()
	out := []InjectedFault{}
	for _, list := range in.pending {
		out = append(out, list...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Method < out[j].Method })
	return out
}

func (s *Simulator) ClearFaults() {
	in := injectorOf(s)
	in.mu.Lock()
	in.pending = map[string][]InjectedFault{}
	in.mu.Unlock()
}

// take consumes one firing of the first pending fault for method, if any.
func (in *faultInjector) take(method string) (types.BaseMethodFault, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	list := in.pending[method]
	if len(list) == 0 {
		return nil, false
	}
	f := list[0]
	if list[0].Count--; list[0].Count <= 0 {
		list = list[1:]
	}
	in.pending[method] = list
	return faultKinds[f.Fault](f.Message), true
}

func init() {
	for _, m := range FaultMethods {
		RegisterOverride(m, injected)
	}
}

func injected(ctx *simulator.Context, this mo.Reference, method *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	s := simFor(ctx.Map)
	if s == nil {
		return nil, nil
	}
	fault, ok := injectorOf(s).take(method.Name)
	if !ok {
		return nil, nil
	}
	if vm, isVM := this.(*simulator.VirtualMachine); isVM && method.Name == "ReconfigVM_Task" {
		return &failingReconfig{VirtualMachine: vm, fault: fault}, nil
	}
	return nil, fault
}

// failingReconfig answers one ReconfigVM_Task with a task that ends in the injected fault.
type failingReconfig struct {
	*simulator.VirtualMachine
	fault types.BaseMethodFault
}

func (vm *failingReconfig) ReconfigVMTask(ctx *simulator.Context, _ *types.ReconfigVM_Task) soap.HasFault {
	return &methods.ReconfigVM_TaskBody{Res: &types.ReconfigVM_TaskResponse{
		Returnval: failedTask(ctx, vm.VirtualMachine, "reconfigVm", vm.fault),
	}}
}

func faultNames() []string {
	names := make([]string, 0, len(faultKinds))
	for n := range faultKinds {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// faultRoutes: POST /faults queues one entry, GET /faults lists the pending ones, DELETE /faults
// drops them (README.md, admin API).
func (srv *Server) faultRoutes(mux *http.ServeMux) {
	mux.HandleFunc("POST /faults", func(w http.ResponseWriter, r *http.Request) {
		var req InjectedFault
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"want {\"method\": M, \"fault\": F, \"count\": N}"}`, http.StatusBadRequest)
			return
		}
		if err := srv.sim.InjectFault(req); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, map[string]any{"pending": srv.sim.PendingFaults()})
	})
	mux.HandleFunc("GET /faults", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"pending": srv.sim.PendingFaults()})
	})
	mux.HandleFunc("DELETE /faults", func(w http.ResponseWriter, _ *http.Request) {
		srv.sim.ClearFaults()
		writeJSON(w, map[string]any{"pending": []InjectedFault{}})
	})
}
