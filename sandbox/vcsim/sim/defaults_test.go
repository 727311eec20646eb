package sim

import (
	"context"
	"reflect"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// Clusters, distributed switches, port groups, host option definitions and guest OS descriptors
// carry the fields vCenter always sends: DRS overrides' enabled, HA default VM settings with
// VM tools monitoring, the switch's uplink and default port policies, port groups' VLAN,
// security and teaming, every OptionDef's optionType, recommendedDiskController.
func TestDefaultsComplete(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	pc := property.DefaultCollector(c)

	var clusters []mo.ClusterComputeResource
	refs := func(kind string) []types.ManagedObjectReference {
		var out []types.ManagedObjectReference
		for _, o := range s.Map.All(kind) {
			out = append(out, o.Reference())
		}
		return out
	}
	if err := pc.Retrieve(ctx, refs("ClusterComputeResource"), []string{"name", "configurationEx"}, &clusters); err != nil {
		t.Fatal(err)
	}
	checkCluster := func(name string, cfg *types.ClusterConfigInfoEx) {
		t.Helper()
		for _, o := range cfg.DrsVmConfig {
			if o.Enabled == nil {
				t.Errorf("%s: DRS override of %s without enabled", name, o.Key)
			}
		}
		vs := cfg.DasConfig.DefaultVmSettings
		if vs == nil || vs.VmToolsMonitoringSettings == nil || vs.VmComponentProtectionSettings == nil {
			t.Errorf("%s: dasConfig.defaultVmSettings %+v", name, vs)
		}
		if cfg.DrsConfig.EnableVmBehaviorOverrides == nil {
			t.Errorf("%s: drsConfig.enableVmBehaviorOverrides unset", name)
		}
		checkEnums(t, name+" configurationEx", reflect.ValueOf(cfg))
	}
	overrides := 0
	for _, cl := range clusters {
		cfg := cl.ConfigurationEx.(*types.ClusterConfigInfoEx)
		overrides += len(cfg.DrsVmConfig)
		checkCluster(cl.Name, cfg)
	}
	if overrides == 0 {
		t.Error("no DRS override in the inventory")
	}

	// An override added without enabled reads back with enabled: true.
	vm := s.vmByName("ml-trainer-01")
	cluster := object.NewClusterComputeResource(c, clusters[0].Self)
	for _, cl := range clusters {
		for _, h := range s.Map.Get(cl.Self).(*simVMCluster).Host {
			if h == *vm.Runtime.Host {
				cluster = object.NewClusterComputeResource(c, cl.Self)
			}
		}
	}
	task, err := cluster.Reconfigure(ctx, &types.ClusterConfigSpecEx{DrsVmConfigSpec: []types.ClusterDrsVmConfigSpec{{
		ArrayUpdateSpec: types.ArrayUpdateSpec{Operation: types.ArrayUpdateOperationAdd},
		Info:            &types.ClusterDrsVmConfigInfo{Key: vm.Self, Behavior: types.DrsBehaviorManual},
	}}}, true)
	if err == nil {
		err = task.Wait(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	var after mo.ClusterComputeResource
	if err := pc.RetrieveOne(ctx, cluster.Reference(), []string{"configurationEx"}, &after); err != nil {
		t.Fatal(err)
	}
	checkCluster("after reconfigure", after.ConfigurationEx.(*types.ClusterConfigInfoEx))

	var switches []mo.DistributedVirtualSwitch
	if err := pc.Retrieve(ctx, refs("DistributedVirtualSwitch"), []string{"name", "config"}, &switches); err != nil {
		t.Fatal(err)
	}
	if len(switches) == 0 {
		t.Fatal("no distributed switch")
	}
	for _, sw := range switches {
		cfg := sw.Config.GetDVSConfigInfo()
		if cfg.UplinkPortPolicy == nil || cfg.DefaultPortConfig == nil {
			t.Errorf("%s: uplinkPortPolicy %v, defaultPortConfig %v", sw.Name, cfg.UplinkPortPolicy, cfg.DefaultPortConfig)
		}
	}
	var pgs []mo.DistributedVirtualPortgroup
	if err := pc.Retrieve(ctx, refs("DistributedVirtualPortgroup"), []string{"name", "config"}, &pgs); err != nil {
		t.Fatal(err)
	}
	for _, pg := range pgs {
		ps, ok := pg.Config.DefaultPortConfig.(*types.VMwareDVSPortSetting)
		if !ok || ps.Vlan == nil || ps.SecurityPolicy == nil || ps.UplinkTeamingPolicy == nil || ps.VmDirectPathGen2Allowed == nil {
			t.Errorf("%s: defaultPortConfig %+v", pg.Name, pg.Config.DefaultPortConfig)
		}
	}

	for _, h := range s.Map.All("HostSystem") {
		var host mo.HostSystem
		if err := pc.RetrieveOne(ctx, h.Reference(), []string{"config.optionDef"}, &host); err != nil {
			t.Fatal(err)
		}
		for _, d := range host.Config.OptionDef {
			if d.OptionType == nil {
				t.Errorf("%s: optionDef %s without optionType", h.(*simHost).Name, d.Key)
			}
		}
	}

	host := *vm.Runtime.Host
	var cr mo.ComputeResource
	if err := pc.RetrieveOne(ctx, *s.Map.Get(host).(*simHost).Parent, []string{"environmentBrowser"}, &cr); err != nil {
		t.Fatal(err)
	}
	opt, err := methods.QueryConfigOptionEx(ctx, c, &types.QueryConfigOptionEx{
		This: *cr.EnvironmentBrowser,
		Spec: &types.EnvironmentBrowserConfigOptionQuerySpec{Key: "vmx-19", Host: &host},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(opt.Returnval.GuestOSDescriptor) == 0 {
		t.Fatal("no guest OS descriptor")
	}
	for _, d := range opt.Returnval.GuestOSDescriptor {
		if d.RecommendedDiskController == "" || d.RecommendedFirmware == "" || d.SupportLevel == "" || len(d.SupportedEthernetCard) == 0 {
			t.Errorf("guest %s: %+v", d.Id, d)
			break
		}
	}
}
