package sim

import (
	"reflect"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Per-VM HA and DRS overrides (vSphere API reference: ClusterDrsVmConfigSpec,
// ClusterDasVmConfigSpec with dasSettings.restartPriority "disabled", applied through
// ReconfigureComputeResource_Task; docs/design.md, "VM side: feature conflicts").
//
// The upstream simulator already applies add/edit/remove of drsVmConfigSpec and
// dasVmConfigSpec. What it lacks, added here:
//   - property notifications: it edits configurationEx in place, so WaitForUpdatesEx watchers
//     never hear of the change; a successful reconfigure now reports configurationEx;
//   - atomicity: a spec failing half-way (e.g. an add for a VM that already has an override)
//     left the earlier entries applied; vCenter applies all or nothing;
//   - robustness: an edit of a DAS override stored without dasSettings crashed it, and a
//     removeKey decoded as a *ManagedObjectReference did too; an override for an object that
//     is not a VM is refused with InvalidArgument.
type passthroughCluster struct {
	*simulator.ClusterComputeResource
}

func init() {
	OverrideOf(func(_ *simulator.Context, c *simulator.ClusterComputeResource) mo.Reference {
		return &passthroughCluster{c}
	}, "ReconfigureComputeResource_Task")
	// A managed object reference in an xsd:anyType field (removeKey) arrives from pyVmomi as
	// xsi:type="ManagedObject" (the vmodl name; pyVmomi SoapAdapter), which vCenter accepts.
	// govmomi knows only "ManagedObjectReference" and would decode it as nil, so the remove
	// failed with InvalidArgument.
	types.Add("ManagedObject", reflect.TypeOf((*types.ManagedObjectReference)(nil)).Elem())
}

// ReconfigureComputeResourceTask validates and normalises the override specs, lets the upstream
// apply the reconfigure, rolls the overrides back if it failed, and notifies on success.
func (c *passthroughCluster) ReconfigureComputeResourceTask(ctx *simulator.Context, req *types.ReconfigureComputeResource_Task) soap.HasFault {
	cfg, ok := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
	spec, isEx := req.Spec.(*types.ClusterConfigSpecEx)
	if !ok || !isEx {
		return c.ClusterComputeResource.ReconfigureComputeResourceTask(ctx, req)
	}
	if fault := normaliseOverrideSpecs(ctx, cfg, spec); fault != nil {
		return &methods.ReconfigureComputeResource_TaskBody{Res: &types.ReconfigureComputeResource_TaskResponse{
			Returnval: failedTask(ctx, c.ClusterComputeResource, "reconfigureCluster", fault),
		}}
	}

	// Work on fresh copies, so values already sent to watchers are never edited in place and
	// the previous lists can be put back.
	prevDas, prevDrs := cloneDasVmConfig(cfg.DasVmConfig), append([]types.ClusterDrsVmConfigInfo(nil), cfg.DrsVmConfig...)
	cfg.DasVmConfig = cloneDasVmConfig(cfg.DasVmConfig)
	cfg.DrsVmConfig = append([]types.ClusterDrsVmConfigInfo(nil), cfg.DrsVmConfig...)

	res := c.ClusterComputeResource.ReconfigureComputeResourceTask(ctx, req)
	body, ok := res.(*methods.ReconfigureComputeResource_TaskBody)
	if !ok || body.Res == nil {
		return res
	}
	if waitTask(ctx, body.Res.Returnval) != nil {
		cfg.DasVmConfig, cfg.DrsVmConfig = prevDas, prevDrs
		return res
	}
	completeClusterConfig(cfg)
	ctx.Update(c.ClusterComputeResource, []types.PropertyChange{
		{Name: "configurationEx", Op: types.PropertyChangeOpAssign, Val: cfg},
	})
	return res
}

// normaliseOverrideSpecs checks the VM override specs against the cluster and fixes the shapes
// the upstream can't take: pointer removeKeys and DAS overrides without dasSettings.
func normaliseOverrideSpecs(ctx *simulator.Context, cfg *types.ClusterConfigInfoEx, spec *types.ClusterConfigSpecEx) types.BaseMethodFault {
	isVM := func(ref types.ManagedObjectReference) bool {
		_, ok := ctx.Map.Get(ref).(*simulator.VirtualMachine)
		return ok
	}
	removeKey := func(k types.AnyType) (types.AnyType, types.BaseMethodFault) {
		switch r := k.(type) {
		case types.ManagedObjectReference:
			return r, nil
		case *types.ManagedObjectReference:
			if r != nil {
				return *r, nil
			}
		}
		return nil, &types.InvalidArgument{InvalidProperty: "removeKey"}
	}
	var fault types.BaseMethodFault
	for i := range spec.DasVmConfigSpec {
		s := &spec.DasVmConfigSpec[i]
		if s.Operation == types.ArrayUpdateOperationRemove {
			if s.RemoveKey, fault = removeKey(s.RemoveKey); fault != nil {
				return fault
			}
			continue
		}
		if s.Info == nil || !isVM(s.Info.Key) {
			return &types.InvalidArgument{InvalidProperty: "dasVmConfigSpec.info.key"}
		}
		if s.Operation == types.ArrayUpdateOperationEdit && s.Info.DasSettings != nil {
			for j := range cfg.DasVmConfig {
				if cfg.DasVmConfig[j].Key == s.Info.Key && cfg.DasVmConfig[j].DasSettings == nil {
					cfg.DasVmConfig[j].DasSettings = &types.ClusterDasVmSettings{}
				}
			}
		}
	}
	for i := range spec.DrsVmConfigSpec {
		s := &spec.DrsVmConfigSpec[i]
		if s.Operation == types.ArrayUpdateOperationRemove {
			if s.RemoveKey, fault = removeKey(s.RemoveKey); fault != nil {
				return fault
			}
			continue
		}
		if s.Info == nil || !isVM(s.Info.Key) {
			return &types.InvalidArgument{InvalidProperty: "drsVmConfigSpec.info.key"}
		}
	}
	return nil
}

// cloneDasVmConfig copies the DAS overrides including their settings, which the upstream's
// edit changes in place.
func cloneDasVmConfig(in []types.ClusterDasVmConfigInfo) []types.ClusterDasVmConfigInfo {
	out := make([]types.ClusterDasVmConfigInfo, len(in))
	for i, c := range in {
		if c.DasSettings != nil {
			s := *c.DasSettings
			c.DasSettings = &s
		}
		out[i] = c
	}
	return out
}
