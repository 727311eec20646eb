package sim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// configureCluster sets configurationEx: HA (das) and DRS settings and per-VM overrides
// (ClusterDasVmConfigInfo, ClusterDrsVmConfigInfo; vSphere API reference). The simulator's
// CreateCluster ignores its spec, so the loader writes the result directly.
func (s *Simulator) configureCluster(c *simulator.ClusterComputeResource, spec *Cluster) {
	cfg, _ := c.ConfigurationEx.(*types.ClusterConfigInfoEx)
	if cfg == nil {
		cfg = &types.ClusterConfigInfoEx{}
		c.ConfigurationEx = cfg
	}
	cfg.DasConfig = types.ClusterDasConfigInfo{
		Enabled:                 types.NewBool(spec.HA.Enabled),
		HostMonitoring:          string(types.ClusterDasConfigInfoServiceStateEnabled),
		VmMonitoring:            string(types.ClusterDasConfigInfoVmMonitoringStateVmMonitoringDisabled),
		AdmissionControlEnabled: types.NewBool(false),
		DefaultVmSettings: &types.ClusterDasVmSettings{
			RestartPriority: orDefault(spec.HA.RestartPriority, string(types.ClusterDasVmSettingsRestartPriorityMedium)),
		},
	}
	cfg.DrsConfig = types.ClusterDrsConfigInfo{
		Enabled:           types.NewBool(spec.DRS.Enabled),
		DefaultVmBehavior: types.DrsBehavior(orDefault(spec.DRS.AutomationLevel, string(types.DrsBehaviorFullyAutomated))),
	}
	cfg.DrsVmConfig, cfg.DasVmConfig = nil, nil
	for _, o := range spec.VMOverrides {
		vm := s.vmByName(o.VM)
		if vm == nil {
			continue
		}
		if o.DRSEnabled != nil || o.DRSBehavior != "" {
			cfg.DrsVmConfig = append(cfg.DrsVmConfig, types.ClusterDrsVmConfigInfo{
				Key: vm.Self, Enabled: o.DRSEnabled, Behavior: types.DrsBehavior(o.DRSBehavior),
			})
		}
		if o.RestartPriority != "" {
			cfg.DasVmConfig = append(cfg.DasVmConfig, types.ClusterDasVmConfigInfo{
				Key:         vm.Self,
				DasSettings: &types.ClusterDasVmSettings{RestartPriority: o.RestartPriority},
			})
		}
	}
	completeClusterConfig(cfg)
}

func (s *Simulator) vmByName(name string) *simulator.VirtualMachine {
	for _, e := range s.Map.All("VirtualMachine") {
		if vm := e.(*simulator.VirtualMachine); vm.Name == name {
			return vm
		}
	}
	return nil
}

// drsFullyAutomated reports whether DRS would migrate this VM on its own: DRS on in the
// host's cluster and the VM's effective behavior fullyAutomated.
func (s *Simulator) drsFullyAutomated(cluster *simulator.ClusterComputeResource, vm types.ManagedObjectReference) bool {
	cfg, _ := cluster.ConfigurationEx.(*types.ClusterConfigInfoEx)
	if cfg == nil || cfg.DrsConfig.Enabled == nil || !*cfg.DrsConfig.Enabled {
		return false
	}
	behavior := cfg.DrsConfig.DefaultVmBehavior
	for _, o := range cfg.DrsVmConfig {
		if o.Key == vm {
			if o.Enabled != nil && !*o.Enabled {
				return false
			}
			if o.Behavior != "" {
				behavior = o.Behavior
			}
		}
	}
	return behavior == types.DrsBehaviorFullyAutomated
}
