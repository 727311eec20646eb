package sim

import (
	"fmt"
	"strings"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// placement is where a VM is created: its folder (the VM's parent) and its resource pool.
type placement struct {
	folder *object.Folder
	pool   *object.ResourcePool
}

// placer creates the folders and resource pools the VMs of one datacenter name, each once and
// through the API a client would use (Folder.CreateFolder, ResourcePool.CreateResourcePool),
// so they are real inventory objects: `govc ls /DC1/vm/ml-team` lists them.
type placer struct {
	b        *builder
	vmFolder *object.Folder
	folders  map[string]*object.Folder       // path under vmFolder → folder
	pools    map[string]*object.ResourcePool // root pool + "/" + path → pool
}

func newPlacer(b *builder, vmFolder *object.Folder) *placer {
	return &placer{b: b, vmFolder: vmFolder, folders: map[string]*object.Folder{}, pools: map[string]*object.ResourcePool{}}
}

// place resolves a VM's folder and pool, creating what is missing. It runs before the VMs are
// created in parallel, so creation order (and the objects' ids) follows the inventory.
func (p *placer) place(spec *VM) (placement, error) {
	host := p.b.sim.hosts[spec.Host]
	if host == nil {
		return placement{}, fmt.Errorf("unknown host %q", spec.Host)
	}
	folder, err := p.folder(spec.Folder)
	if err != nil {
		return placement{}, fmt.Errorf("folder %q: %w", spec.Folder, err)
	}
	root, err := rootPool(p.b.sim.Map, host)
	if err != nil {
		return placement{}, fmt.Errorf("resourcePool %q: %w", spec.ResourcePool, err)
	}
	pool, err := p.pool(object.NewResourcePool(p.b.client, root), spec.ResourcePool)
	if err != nil {
		return placement{}, fmt.Errorf("resourcePool %q: %w", spec.ResourcePool, err)
	}
	return placement{folder: folder, pool: pool}, nil
}

// folder returns the folder at path under the vm folder, creating every missing one on the way.
func (p *placer) folder(path string) (*object.Folder, error) {
	folder, names := p.vmFolder, splitPath(path)
	for i, name := range names {
		prefix := strings.Join(names[:i+1], "/")
		if f := p.folders[prefix]; f != nil {
			folder = f
			continue
		}
		f, err := folder.CreateFolder(p.b.ctx, name)
		if err != nil {
			return nil, err
		}
		p.folders[prefix], folder = f, f
	}
	return folder, nil
}

// pool returns the pool at path under root, creating every missing one on the way. A new pool
// gets the default allocation (no reservation, no limit, normal shares, expandable), as the
// vSphere Client's "New Resource Pool" does.
func (p *placer) pool(root *object.ResourcePool, path string) (*object.ResourcePool, error) {
	pool, names := root, splitPath(path)
	for i, name := range names {
		key := root.Reference().Value + "/" + strings.Join(names[:i+1], "/")
		if rp := p.pools[key]; rp != nil {
			pool = rp
			continue
		}
		rp, err := pool.Create(p.b.ctx, name, types.DefaultResourceConfigSpec())
		if err != nil {
			return nil, err
		}
		p.pools[key], pool = rp, rp
	}
	return pool, nil
}

func splitPath(path string) []string {
	if path == "" {
		return nil
	}
	return strings.Split(path, "/")
}

// rootPool is the root resource pool ("Resources") of a host's compute resource: the cluster's,
// or the standalone host's ComputeResource's. Every host the loader adds has one (AddHost /
// AddStandaloneHost create it), so the error only guards against a broken inventory model.
func rootPool(m *simulator.Registry, h *simulator.HostSystem) (types.ManagedObjectReference, error) {
	if h.Parent != nil {
		switch cr := m.Get(*h.Parent).(type) {
		case *simulator.ClusterComputeResource:
			return *cr.ResourcePool, nil
		case *mo.ComputeResource:
			return *cr.ResourcePool, nil
		}
	}
	return types.ManagedObjectReference{}, fmt.Errorf("host %q has no compute resource (cluster or standalone ComputeResource), so no root resource pool", h.Name)
}
