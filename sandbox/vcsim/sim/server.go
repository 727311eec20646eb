package sim

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/types"
)

// Options configure a Simulator.
type Options struct {
	// RebootDelay is how long a rebooting host stays notResponding before it reconnects.
	RebootDelay time.Duration
	// StateDir holds datastore directories (a temporary directory when empty).
	StateDir string
}

// Simulator is a vCenter built on govmomi's VPX simulator with an inventory loaded from YAML
// and the passthrough, maintenance-mode and reboot rules installed.
type Simulator struct {
	Model   *simulator.Model
	Service *simulator.Service
	Map     *simulator.Registry

	opts    Options
	dataDir string

	hosts        map[string]*simulator.HostSystem
	hostSpecs    map[string]*Host
	clusterSpecs map[types.ManagedObjectReference]*Cluster
	passthru     map[types.ManagedObjectReference]*PciPassthruSystem

	Counters *Counters
	sessions sessionExpiry
	reboots  rebootTracker
}

var (
	instancesMu sync.RWMutex
	instances   = map[*simulator.Registry]*Simulator{}
)

// simFor finds the Simulator owning a registry; overrides use it to reach per-instance state.
func simFor(r *simulator.Registry) *Simulator {
	instancesMu.RLock()
	defer instancesMu.RUnlock()
	return instances[r]
}

// New builds a simulator from an inventory. The inventory is created through the simulator's
// own API on a VPX model started empty; the dispatch (counters, overrides) is installed only
// afterwards, so loading is neither counted nor subject to the rules.
func New(inv *Inventory, opts Options) (*Simulator, error) {
	if opts.RebootDelay == 0 {
		opts.RebootDelay = 2 * time.Second
	}
	model := simulator.VPX()
	model.Datacenter, model.Portgroup, model.Host, model.Cluster = 0, 0, 0, 0
	model.ClusterHost, model.Datastore, model.Machine = 0, 0, 0
	model.Autostart = false
	if err := model.Create(); err != nil {
		return nil, err
	}
	aboutVCenter(model)
	s := &Simulator{
		Model:        model,
		Service:      model.Service,
		Map:          model.Map(),
		opts:         opts,
		hosts:        map[string]*simulator.HostSystem{},
		hostSpecs:    map[string]*Host{},
		clusterSpecs: map[types.ManagedObjectReference]*Cluster{},
		passthru:     map[types.ManagedObjectReference]*PciPassthruSystem{},
		Counters:     newCounters(),
	}
	s.reboots.pending = map[types.ManagedObjectReference]*pendingReboot{}

	dir := opts.StateDir
	if dir == "" {
		d, err := os.MkdirTemp("", "dpio-vcsim-")
		if err != nil {
			return nil, err
		}
		dir = d
		s.dataDir = d
	}
	ctx := context.Background()
	client, err := vim25.NewClient(ctx, model.Service)
	if err != nil {
		s.Close()
		return nil, err
	}
	// Rules first: VMs the inventory powers on go through them like any other power-on
	// (Gen2 runtime state, dynamic device assignment).
	instancesMu.Lock()
	instances[s.Map] = s
	instancesMu.Unlock()
	Install(s.Map)
	b := &builder{sim: s, ctx: ctx, client: client, dsDir: dir}
	if err := b.build(inv); err != nil {
		s.Close()
		return nil, fmt.Errorf("load inventory: %w", err)
	}
	// The counters are for clients: the inventory's own set-up calls don't count.
	s.completeReferences()
	s.Counters.Reset()
	return s, nil
}

// Close stops pending reboots and removes temporary state.
func (s *Simulator) Close() {
	s.reboots.stopAll()
	instancesMu.Lock()
	delete(instances, s.Map)
	instancesMu.Unlock()
	dropDeviceMMIO(s.Map)
	dropCallers(s.Map)
	s.Model.Remove()
	if s.dataDir != "" {
		_ = os.RemoveAll(s.dataDir)
	}
}

// Host returns a loaded host by name (nil if unknown).
func (s *Simulator) Host(name string) *simulator.HostSystem { return s.hosts[name] }

// vCenterVersion is what the simulator reports as its own version. The VPX model says 6.5,
// which makes pyvmomi negotiate the 6.5 wire version and silently drop 7.0+ fields such as
// HostPciPassthruConfig.applyNow and hardwareLabel; the sandbox stands for a current vCenter.
const (
	vCenterVersion    = "8.0.3"
	vCenterAPIVersion = "8.0.3.0"
	vCenterBuild      = "24022515"
)

func aboutVCenter(model *simulator.Model) {
	si := model.Map().Get(vim25.ServiceInstance).(*simulator.ServiceInstance)
	about := &si.Content.About
	about.Version = vCenterVersion
	about.ApiVersion = vCenterAPIVersion
	about.Build = vCenterBuild
	about.FullName = fmt.Sprintf("VMware vCenter Server %s build-%s", vCenterVersion, vCenterBuild)
	about.LicenseProductVersion = "8.0"
}
