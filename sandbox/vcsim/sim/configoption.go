package sim

import (
	"strconv"
	"strings"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// passthroughEnvBrowser wraps the simulator's EnvironmentBrowser for QueryConfigOption(Ex)
// (this file) and QueryConfigTarget (configtarget.go).
type passthroughEnvBrowser struct {
	*simulator.EnvironmentBrowser
}

func init() {
	OverrideOf(func(_ *simulator.Context, b *simulator.EnvironmentBrowser) mo.Reference {
		return &passthroughEnvBrowser{b}
	}, "QueryConfigOption", "QueryConfigOptionEx", "QueryConfigTarget")
}

// releaseVersion is an ESXi release as [major, minor, update], parsed from
// config.product.version ("8.0.2"); zeros where the version is missing or unreadable.
type releaseVersion [3]int

func hostVersion(h *simulator.HostSystem) releaseVersion {
	var v releaseVersion
	if h == nil || h.Config == nil {
		return v
	}
	for i, part := range strings.SplitN(h.Config.Product.Version, ".", 3) {
		n, err := strconv.Atoi(part)
		if err != nil {
			break
		}
		v[i] = n
	}
	return v
}

func (v releaseVersion) atLeast(major, minor, update int) bool {
	for i, want := range [3]int{major, minor, update} {
		if v[i] != want {
			return v[i] > want
		}
	}
	return true
}

// pciPassthroughLimit is the maximum number of PCI passthrough devices per VM on a host of
// version v. Source: vSphere configuration maximums; KB 309986 (docs/design.md,
// "VM side: device limit"):
// 4.0: 2; 5.x: 6; 6.0–7.x: 16; 8.0: 32; 8.0U1: 64; 8.0U2 and later: 128.
// A host whose version is unknown gets the current maximum.
func pciPassthroughLimit(v releaseVersion) int32 {
	switch {
	case v == releaseVersion{}:
		return 128
	case v[0] < 5:
		return 2
	case v[0] < 6:
		return 6
	case v[0] < 8:
		return 16
	case v.atLeast(8, 0, 2):
		return 128
	case v.atLeast(8, 0, 1):
		return 64
	default:
		return 32
	}
}

// computeResourceHosts returns the hosts of the (cluster) compute resource that owns an
// environment browser; vSphere answers for these when a query names no host.
func computeResourceHosts(ctx *simulator.Context, browser types.ManagedObjectReference) []types.ManagedObjectReference {
	for _, kind := range []string{"ClusterComputeResource", "ComputeResource"} {
		for _, e := range ctx.Map.All(kind) {
			var cr *mo.ComputeResource
			switch x := e.(type) {
			case *simulator.ClusterComputeResource:
				cr = &x.ComputeResource
			case *mo.ComputeResource:
				cr = x
			case *mo.ClusterComputeResource:
				cr = &x.ComputeResource
			}
			if cr != nil && cr.EnvironmentBrowser != nil && *cr.EnvironmentBrowser == browser {
				return cr.Host
			}
		}
	}
	return nil
}

// queryHosts is the host a query names, or all hosts behind the browser when it names none.
func (b *passthroughEnvBrowser) queryHosts(ctx *simulator.Context, host *types.ManagedObjectReference) []*simulator.HostSystem {
	refs := []types.ManagedObjectReference{}
	if host != nil {
		refs = append(refs, *host)
	} else {
		refs = computeResourceHosts(ctx, b.Self)
	}
	var hosts []*simulator.HostSystem
	for _, ref := range refs {
		if h, ok := ctx.Map.Get(ref).(*simulator.HostSystem); ok {
			hosts = append(hosts, h)
		}
	}
	return hosts
}

// withPassthroughLimit returns a copy of opt whose PCI controller option
// (hardwareOptions.virtualDeviceOption[VirtualPCIControllerOption].numPCIPassthroughDevices) is
// the limit of the named host, or without a host the lowest limit among the compute resource's
// hosts (the VM may run on any of them). The copy keeps the upstream's shared option intact.
func (b *passthroughEnvBrowser) withPassthroughLimit(ctx *simulator.Context, opt *types.VirtualMachineConfigOption, host *types.ManagedObjectReference) *types.VirtualMachineConfigOption {
	if opt == nil {
		return nil
	}
	limit := int32(-1)
	for _, h := range b.queryHosts(ctx, host) {
		if l := pciPassthroughLimit(hostVersion(h)); limit < 0 || l < limit {
			limit = l
		}
	}
	if limit < 0 {
		limit = pciPassthroughLimit(releaseVersion{})
	}
	limitOpt := types.IntOption{Min: 0, Max: limit, DefaultValue: 0}
	cp := *opt
	cp.HardwareOptions.VirtualDeviceOption = nil
	found := false
	for _, o := range opt.HardwareOptions.VirtualDeviceOption {
		if pci, ok := o.(*types.VirtualPCIControllerOption); ok {
			pciCopy := *pci
			pciCopy.NumPCIPassthroughDevices = limitOpt
			o, found = &pciCopy, true
		}
		cp.HardwareOptions.VirtualDeviceOption = append(cp.HardwareOptions.VirtualDeviceOption, o)
	}
	if !found {
		pci := &types.VirtualPCIControllerOption{NumPCIPassthroughDevices: limitOpt}
		pci.Type = "VirtualPCIController"
		pci.Devices = types.IntOption{Min: 1, Max: 1, DefaultValue: 1}
		pci.SupportedDevice = []string{"VirtualPCIPassthrough", "VirtualVmxnet3", "VirtualE1000e"}
		cp.HardwareOptions.VirtualDeviceOption = append(cp.HardwareOptions.VirtualDeviceOption, pci)
	}
	return &cp
}

// QueryConfigOption adds the per-VM passthrough device limit of the host's version.
func (b *passthroughEnvBrowser) QueryConfigOption(ctx *simulator.Context, req *types.QueryConfigOption) soap.HasFault {
	res := b.EnvironmentBrowser.QueryConfigOption(req)
	if body, ok := res.(*methods.QueryConfigOptionBody); ok && body.Res != nil {
		body.Res.Returnval = wellFormed(b.withPassthroughLimit(ctx, body.Res.Returnval, req.Host), req.Key)
	}
	return res
}

// wellFormed makes the upstream's bare option one a SOAP client can read, as vCenter sends it:
//   - `version` is the hardware version asked for (`key`, e.g. "vmx-19"; vSphere API reference,
//     EnvironmentBrowser.QueryConfigOption: "key: the key found in
//     VirtualMachineConfigOptionDescriptor"), not always the simulator's own "vmx-13";
//   - `hardwareOptions.resourceConfigOption` shares options carry a `defaultLevel` of
//     SharesLevel "normal" (the ESXi default for CPU and memory shares) and the ESXi share
//     range; the upstream leaves the enum empty, which strict clients (pyVmomi) reject;
//   - every guest OS descriptor carries what vCenter reports (recommendedDiskController,
//     firmware, ethernet cards, supportLevel, ...; guestDescriptor): upstream's have only id
//     and family.
func wellFormed(opt *types.VirtualMachineConfigOption, key string) *types.VirtualMachineConfigOption {
	if opt == nil {
		return nil
	}
	if key != "" {
		opt.Version = key
	}
	for i := range opt.GuestOSDescriptor {
		guestDescriptor(&opt.GuestOSDescriptor[i])
	}
	shares := types.SharesOption{
		SharesOption: types.IntOption{Min: 0, Max: 1000000, DefaultValue: 1000},
		DefaultLevel: types.SharesLevelNormal,
	}
	rc := &opt.HardwareOptions.ResourceConfigOption
	for _, alloc := range []*types.ResourceAllocationOption{&rc.CpuAllocationOption, &rc.MemoryAllocationOption} {
		if alloc.SharesOption.DefaultLevel == "" {
			alloc.SharesOption = shares
		}
	}
	return opt
}

// QueryConfigOptionEx adds the per-VM passthrough device limit of the host's version.
func (b *passthroughEnvBrowser) QueryConfigOptionEx(ctx *simulator.Context, req *types.QueryConfigOptionEx) soap.HasFault {
	res := b.EnvironmentBrowser.QueryConfigOptionEx(req)
	if body, ok := res.(*methods.QueryConfigOptionExBody); ok && body.Res != nil {
		var host *types.ManagedObjectReference
		if req.Spec != nil {
			host = req.Spec.Host
		}
		key := ""
		if req.Spec != nil {
			key = req.Spec.Key
		}
		body.Res.Returnval = wellFormed(b.withPassthroughLimit(ctx, body.Res.Returnval, host), key)
	}
	return res
}
