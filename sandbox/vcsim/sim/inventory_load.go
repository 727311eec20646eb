package sim

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// builder creates an Inventory inside a fresh simulator through the simulator's own API (an
// in-process vim25 client), then patches the properties the API can't set (host hardware,
// passthrough state, FT) directly on the objects before anyone can connect.
type builder struct {
	sim    *Simulator
	ctx    context.Context
	client *vim25.Client
	dsDir  string
}

// datastoreName is the one shared datastore of each datacenter; every host mounts it.
const datastoreName = "datastore1"

func (b *builder) build(inv *Inventory) error {
	root := object.NewRootFolder(b.client)
	for i := range inv.Datacenters {
		if err := b.datacenter(root, &inv.Datacenters[i]); err != nil {
			return err
		}
	}
	return nil
}

func (b *builder) datacenter(root *object.Folder, spec *Datacenter) error {
	dc, err := root.CreateDatacenter(b.ctx, spec.Name)
	if err != nil {
		return fmt.Errorf("datacenter %q: %w", spec.Name, err)
	}
	folders, err := dc.Folders(b.ctx)
	if err != nil {
		return err
	}
	var switches []*object.DistributedVirtualSwitch
	for _, d := range spec.DVS {
		dvs, err := b.dvs(folders.NetworkFolder, d)
		if err != nil {
			return fmt.Errorf("dvs %q: %w", d.Name, err)
		}
		switches = append(switches, dvs)
	}

	// Clusters first, then every host through a worker pool: adding a host is a task round
	// trip plus a deep copy of the ESXi template, and overlapping them keeps big inventories fast.
	type hostJob struct {
		spec   *Host
		folder *object.Folder
		parent *object.ClusterComputeResource
	}
	var jobs []hostJob
	for i := range spec.Clusters {
		c := &spec.Clusters[i]
		cluster, err := folders.HostFolder.CreateCluster(b.ctx, c.Name, types.ClusterConfigSpecEx{})
		if err != nil {
			return fmt.Errorf("cluster %q: %w", c.Name, err)
		}
		b.sim.clusterSpecs[cluster.Reference()] = c
		for j := range c.Hosts {
			jobs = append(jobs, hostJob{spec: &c.Hosts[j], parent: cluster})
		}
	}
	for i := range spec.Hosts {
		jobs = append(jobs, hostJob{spec: &spec.Hosts[i], folder: folders.HostFolder})
	}
	hosts := make([]types.ManagedObjectReference, len(jobs))
	err = parallel(len(jobs), func(i int) error {
		j := jobs[i]
		connect := types.HostConnectSpec{HostName: j.spec.Name}
		var ref types.ManagedObjectReference
		var err error
		if j.parent != nil {
			ref, err = b.waitRef(j.parent.AddHost(b.ctx, connect, true, nil, nil))
		} else {
			ref, err = b.waitRef(j.folder.AddStandaloneHost(b.ctx, connect, true, nil, nil))
		}
		if err != nil {
			return fmt.Errorf("host %q: %w", j.spec.Name, err)
		}
		hosts[i] = ref
		return nil
	})
	if err != nil {
		return err
	}
	for _, j := range jobs {
		b.sim.hostSpecs[j.spec.Name] = j.spec
	}

	if err := b.datastore(spec.Name, hosts); err != nil {
		return err
	}
	for _, dvs := range switches {
		if err := b.joinDVS(dvs, hosts); err != nil {
			return err
		}
	}
	for _, ref := range hosts {
		host := b.sim.Map.Get(ref).(*simulator.HostSystem)
		b.sim.configureHost(host, b.sim.hostSpecs[host.Name])
	}
	if err := b.vms(folders, spec.VMs); err != nil {
		return err
	}
	for ref, c := range b.sim.clusterSpecs {
		b.sim.configureCluster(b.sim.Map.Get(ref).(*simulator.ClusterComputeResource), c)
	}
	return nil
}

func (b *builder) dvs(folder *object.Folder, spec DVS) (*object.DistributedVirtualSwitch, error) {
	var create types.DVSCreateSpec
	// A new switch as the vSphere Client makes it: 4 uplinks and the default port policies
	// (upstream stores the spec as given, so without them uplinkPortPolicy and
	// defaultPortConfig would be unset).
	create.ConfigSpec = &types.VMwareDVSConfigSpec{
		DVSConfigSpec: types.DVSConfigSpec{
			Name:              spec.Name,
			UplinkPortPolicy:  &types.DVSNameArrayUplinkPortPolicy{UplinkPortName: dvsUplinkNames()},
			DefaultPortConfig: defaultPortSetting(),
		},
		MaxMtu: 1500,
	}
	ref, err := b.waitRef(folder.CreateDVS(b.ctx, create))
	if err != nil {
		return nil, err
	}
	dvs := object.NewDistributedVirtualSwitch(b.client, ref)
	for _, pg := range spec.Portgroups {
		allowed := pg.VMDirectPathGen2Allowed
		// DVPortSetting.vmDirectPathGen2Allowed gates Gen2 per port group (vSphere API reference);
		// the rest of the port config is the switch's default (VLAN, security, teaming).
		setting := defaultPortSetting()
		setting.VmDirectPathGen2Allowed = &types.BoolPolicy{Value: &allowed}
		pgSpec := types.DVPortgroupConfigSpec{
			Name:              pg.Name,
			Type:              string(types.DistributedVirtualPortgroupPortgroupTypeEarlyBinding),
			NumPorts:          128,
			DefaultPortConfig: setting,
		}
		task, err := dvs.AddPortgroup(b.ctx, []types.DVPortgroupConfigSpec{pgSpec})
		if err != nil {
			return nil, err
		}
		if err := task.Wait(b.ctx); err != nil {
			return nil, fmt.Errorf("port group %q: %w", pg.Name, err)
		}
	}
	// Load time, nobody connected: complete every port group's policies in place.
	for _, pg := range b.sim.Map.Get(ref).(*simulator.DistributedVirtualSwitch).Portgroup {
		if p, ok := b.sim.Map.Get(pg).(*simulator.DistributedVirtualPortgroup); ok {
			if ps, ok := p.Config.DefaultPortConfig.(*types.VMwareDVSPortSetting); ok {
				completePortSetting(ps)
			}
		}
	}
	return dvs, nil
}

func (b *builder) joinDVS(dvs *object.DistributedVirtualSwitch, hosts []types.ManagedObjectReference) error {
	spec := &types.DVSConfigSpec{}
	for _, h := range hosts {
		spec.Host = append(spec.Host, types.DistributedVirtualSwitchHostMemberConfigSpec{
			Operation: string(types.ConfigSpecOperationAdd),
			Host:      h,
		})
	}
	task, err := dvs.Reconfigure(b.ctx, spec)
	if err != nil {
		return err
	}
	return task.Wait(b.ctx)
}

// datastore mounts one directory as the same-named local datastore on every host of a
// datacenter, which the simulator treats as one shared datastore (as its own model does).
func (b *builder) datastore(dc string, hosts []types.ManagedObjectReference) error {
	dir, err := os.MkdirTemp(b.dsDir, dc+"-")
	if err != nil {
		return err
	}
	for _, ref := range hosts {
		host := b.sim.Map.Get(ref).(*simulator.HostSystem)
		dss := object.NewHostDatastoreSystem(b.client, *host.ConfigManager.DatastoreSystem)
		if _, err := dss.CreateLocalDatastore(b.ctx, datastoreName, dir); err != nil {
			return fmt.Errorf("datastore on %q: %w", host.Name, err)
		}
	}
	return nil
}

// vms creates VMs through a worker pool: each creation is a task round trip. Their folders and
// pools are created first, in inventory order.
func (b *builder) vms(folders *object.DatacenterFolders, vms []VM) error {
	p := newPlacer(b, folders.VmFolder)
	at := make([]placement, len(vms))
	for i := range vms {
		var err error
		if at[i], err = p.place(&vms[i]); err != nil {
			return fmt.Errorf("vm %q: %w", vms[i].Name, err)
		}
	}
	return parallel(len(vms), func(i int) error {
		if err := b.vm(&vms[i], at[i]); err != nil {
			return fmt.Errorf("vm %q: %w", vms[i].Name, err)
		}
		return nil
	})
}

// loadWorkers overlaps the simulator's task round trips while loading.
const loadWorkers = 16

// parallel runs f(0..n-1) on loadWorkers goroutines and returns the first error.
func parallel(n int, f func(i int) error) error {
	next := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for w := 0; w < loadWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					errs <- err
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	return <-errs // nil when no job failed
}

// waitRef waits for a task by polling the simulator's Task object directly: WaitForResult
// would build a PropertyCollector filter per task, which dominated loading time.
func (b *builder) waitRef(task *object.Task, err error) (types.ManagedObjectReference, error) {
	if err != nil {
		return types.ManagedObjectReference{}, err
	}
	t, ok := b.sim.Map.Get(task.Reference()).(*simulator.Task)
	if !ok {
		return types.ManagedObjectReference{}, fmt.Errorf("task %s not found", task.Reference())
	}
	lock := b.sim.newBG()
	for {
		var info types.TaskInfo
		b.sim.Map.WithLock(lock, t, func() { info = t.Info })
		switch info.State {
		case types.TaskInfoStateSuccess:
			ref, _ := info.Result.(types.ManagedObjectReference)
			return ref, nil
		case types.TaskInfoStateError:
			if info.Error != nil {
				return types.ManagedObjectReference{}, fmt.Errorf("%s: %s", info.Name, info.Error.LocalizedMessage)
			}
			return types.ManagedObjectReference{}, fmt.Errorf("%s failed", info.Name)
		}
		time.Sleep(time.Millisecond)
	}
}

// hostByName finds a loaded host; the inventory was validated so names resolve.
func (s *Simulator) hostByName(name string) *simulator.HostSystem {
	for _, e := range s.Map.All("HostSystem") {
		if h := e.(*simulator.HostSystem); h.Name == name {
			return h
		}
	}
	return nil
}

func entityParent(m *simulator.Registry, e mo.Entity) mo.Reference {
	if p := e.Entity().Parent; p != nil {
		return m.Get(*p)
	}
	return nil
}
