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

// Held tasks (admin POST /tasks/hold): the next `count` calls of a task method return their
// task at once, in state running, and the task does nothing until it is released
// (POST /tasks/release). Then the call runs as it would have (every rule of this simulator,
// changeVersion included, is checked at that moment, as vCenter checks it when the task runs)
// and the task ends with its result or fault. A client can thus be killed, or the world changed,
// at a known point: after the task started and before it did anything.
//
// The override is registered in init() of this file, which runs after admin_faults.go's and
// before every rule's (files are initialised in name order): an injected fault still wins, and
// the held call runs the rules itself once released.

// HoldMethods are the task methods that can be held.
var HoldMethods = []string{"ReconfigVM_Task", "EnterMaintenanceMode_Task"}

// HeldTask is one task held or released (GET /tasks/held).
type HeldTask struct {
	Method     string `json:"method"`
	Task       string `json:"task"`
	Entity     string `json:"entity"`
	EntityName string `json:"entityName"`
	Released   bool   `json:"released"`
}

type heldEntry struct {
	HeldTask
	release chan struct{}
}

type taskHolder struct {
	mu      sync.Mutex
	pending map[string]int // method -> calls still to hold
	tasks   []*heldEntry   // in the order they were held
}

var holders sync.Map // *Simulator -> *taskHolder

func holderOf(s *Simulator) *taskHolder {
	v, _ := holders.LoadOrStore(s, &taskHolder{pending: map[string]int{}})
	return v.(*taskHolder)
}

// HoldTasks holds the next count (at least 1) calls of method.
func (s *Simulator) HoldTasks(method string, count int) error {
	if !contains(HoldMethods, method) {
		return fmt.Errorf("method %q: tasks of %v can be held", method, HoldMethods)
	}
	if count <= 0 {
		count = 1
	}
	h := holderOf(s)
	h.mu.Lock()
	h.pending[method] += count
	h.mu.Unlock()
	return nil
}

// ReleaseTasks lets every held task of method (every method when empty) run, and drops the
// holds not used yet; it returns how many tasks it released.
func (s *Simulator) ReleaseTasks(method string) int {
	h := holderOf(s)
	h.mu.Lock()
	defer h.mu.Unlock()
	released := 0
	for _, e := range h.tasks {
		if !e.Released && (method == "" || e.Method == method) {
			e.Released = true
			close(e.release)
			released++
		}
	}
	for m := range h.pending {
		if method == "" || m == method {
			delete(h.pending, m)
		}
	}
	return released
}

// HeldTasks lists every task held so far (released or not) and the holds not used yet.
func (s *Simulator) HeldTasks() ([]HeldTask, map[string]int) {
	h := holderOf(s)
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]HeldTask, 0, len(h.tasks))
	for _, e := range h.tasks {
		out = append(out, e.HeldTask)
	}
	pending := map[string]int{}
	for m, n := range h.pending {
		pending[m] = n
	}
	return out, pending
}

func (h *taskHolder) take(method string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.pending[method] <= 0 {
		return false
	}
	if h.pending[method]--; h.pending[method] == 0 {
		delete(h.pending, method)
	}
	return true
}

func (h *taskHolder) add(e *heldEntry) {
	h.mu.Lock()
	h.tasks = append(h.tasks, e)
	h.mu.Unlock()
}

func init() {
	for _, m := range HoldMethods {
		RegisterOverride(m, held)
	}
}

func held(ctx *simulator.Context, this mo.Reference, method *simulator.Method) (mo.Reference, types.BaseMethodFault) {
	s := simFor(ctx.Map)
	if s == nil {
		return nil, nil
	}
	switch obj := this.(type) {
	case *simulator.VirtualMachine:
		if method.Name == "ReconfigVM_Task" && holderOf(s).take(method.Name) {
			return &heldVM{VirtualMachine: obj, sim: s}, nil
		}
	case *simulator.HostSystem:
		if method.Name == "EnterMaintenanceMode_Task" && holderOf(s).take(method.Name) {
			return &heldHost{HostSystem: obj, sim: s}, nil
		}
	}
	return nil, nil
}

// hold starts the task the client sees and, once released, runs `call` on the caller's
// context (under the entity's lock, as the SOAP dispatch runs it) and waits for the task `call`
// started; its fault becomes the held task's.
func (s *Simulator) hold(ctx *simulator.Context, entity mo.Reference, name, method string,
	call func() types.ManagedObjectReference) types.ManagedObjectReference {
	e := &heldEntry{
		HeldTask: HeldTask{Method: method, Entity: entity.Reference().Value, EntityName: name},
		release:  make(chan struct{}),
	}
	id := method[:len(method)-len("_Task")]
	ref := s.startTaskOn(ctx, entity.Reference(), name, id, func() (types.AnyType, types.BaseMethodFault) {
		<-e.release
		var inner types.ManagedObjectReference
		ctx.Map.WithLock(ctx, entity, func() { inner = call() })
		if inner.Value == "" {
			return nil, nil
		}
		return nil, waitTask(ctx, inner)
	})
	e.Task = ref.Value
	holderOf(s).add(e)
	return ref
}

type heldVM struct {
	*simulator.VirtualMachine
	sim *Simulator
}

func (vm *heldVM) ReconfigVMTask(ctx *simulator.Context, req *types.ReconfigVM_Task) soap.HasFault {
	ref := vm.sim.hold(ctx, vm.VirtualMachine, vm.Name, "ReconfigVM_Task", func() types.ManagedObjectReference {
		res := (&passthroughVM{VirtualMachine: vm.VirtualMachine}).ReconfigVMTask(ctx, req)
		if body, ok := res.(*methods.ReconfigVM_TaskBody); ok && body.Res != nil {
			return body.Res.Returnval
		}
		return types.ManagedObjectReference{}
	})
	return &methods.ReconfigVM_TaskBody{Res: &types.ReconfigVM_TaskResponse{Returnval: ref}}
}

type heldHost struct {
	*simulator.HostSystem
	sim *Simulator
}

func (h *heldHost) EnterMaintenanceModeTask(ctx *simulator.Context, req *types.EnterMaintenanceMode_Task) soap.HasFault {
	ref := h.sim.hold(ctx, h.HostSystem, h.Name, "EnterMaintenanceMode_Task", func() types.ManagedObjectReference {
		res := (&maintenanceHost{HostSystem: h.HostSystem, sim: h.sim}).EnterMaintenanceModeTask(ctx, req)
		if body, ok := res.(*methods.EnterMaintenanceMode_TaskBody); ok && body.Res != nil {
			return body.Res.Returnval
		}
		return types.ManagedObjectReference{}
	})
	return &methods.EnterMaintenanceMode_TaskBody{Res: &types.EnterMaintenanceMode_TaskResponse{Returnval: ref}}
}

// holdRoutes: POST /tasks/hold {"method": M, "count": N}, GET /tasks/held,
// POST /tasks/release {"method": M} (README.md, admin API).
func (srv *Server) holdRoutes(mux *http.ServeMux) {
	listing := func() map[string]any {
		tasks, pending := srv.sim.HeldTasks()
		sort.SliceStable(tasks, func(i, j int) bool { return tasks[i].Task < tasks[j].Task })
		return map[string]any{"tasks": tasks, "pending": pending}
	}
	mux.HandleFunc("POST /tasks/hold", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method string `json:"method"`
			Count  int    `json:"count"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, `{"error":"want {\"method\": M, \"count\": N}"}`, http.StatusBadRequest)
			return
		}
		if err := srv.sim.HoldTasks(req.Method, req.Count); err != nil {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		writeJSON(w, listing())
	})
	mux.HandleFunc("GET /tasks/held", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, listing())
	})
	mux.HandleFunc("POST /tasks/release", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Method string `json:"method"`
		}
		if r.ContentLength != 0 {
			if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
				http.Error(w, `{"error":"want {\"method\": M} or no body"}`, http.StatusBadRequest)
				return
			}
		}
		released := srv.sim.ReleaseTasks(req.Method)
		out := listing()
		out["released"] = released
		writeJSON(w, out)
	})
}
