package sim

import (
	"context"
	"reflect"
	"testing"

	"github.com/vmware/govmomi/object"
	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

func hbaDevices(list []types.BaseHostHostBusAdapter) []string {
	var out []string
	for _, a := range list {
		out = append(out, a.GetHostHostBusAdapter().Device)
	}
	return out
}

// The host's network and storage read the same through host.config and through its network
// system, virtual NIC manager and storage system: the inventory's vmkernel NICs, uplinks and
// HBAs, not the upstream template's.
func TestHostNetworkStorageOneTruth(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	pc := property.DefaultCollector(c)
	const name = "esx-gpu-01.lab.local"
	ref := s.Host(name).Self

	var host mo.HostSystem
	if err := pc.RetrieveOne(ctx, ref, []string{"config.network", "config.storageDevice", "config.virtualNicManagerInfo", "configManager"}, &host); err != nil {
		t.Fatal(err)
	}
	cfg := host.Config
	if len(cfg.Network.Vnic) == 0 || cfg.Network.Vnic[0].Spec.Ip.IpAddress == "127.0.0.1" {
		t.Fatalf("inventory vmkernel NICs missing from config.network: %+v", cfg.Network.Vnic)
	}
	var ns mo.HostNetworkSystem
	if err := pc.RetrieveOne(ctx, *host.ConfigManager.NetworkSystem, []string{"networkInfo", "networkConfig"}, &ns); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(ns.NetworkInfo, cfg.Network) {
		t.Errorf("networkInfo differs from config.network:\n%+v\n%+v", ns.NetworkInfo, cfg.Network)
	}
	if ns.NetworkConfig == nil || len(ns.NetworkConfig.Vnic) != len(cfg.Network.Vnic) ||
		ns.NetworkConfig.Vnic[0].Spec.Ip.IpAddress != cfg.Network.Vnic[0].Spec.Ip.IpAddress {
		t.Errorf("networkConfig %+v", ns.NetworkConfig)
	}
	uplinked := false
	for _, sw := range cfg.Network.Vswitch {
		if sw.Spec.Mtu != 1500 {
			t.Errorf("%s: spec.mtu %d", sw.Name, sw.Spec.Mtu)
		}
		if len(sw.Pnic) > 0 {
			uplinked = true
			b, ok := sw.Spec.Bridge.(*types.HostVirtualSwitchBondBridge)
			if !ok || len(b.NicDevice) != len(sw.Pnic) {
				t.Errorf("%s: pnic %v, bridge %+v", sw.Name, sw.Pnic, sw.Spec.Bridge)
			}
		}
	}
	if !uplinked {
		t.Error("no vSwitch with an uplink")
	}

	var vnm mo.HostVirtualNicManager
	if err := pc.RetrieveOne(ctx, *host.ConfigManager.VirtualNicManager, []string{"info"}, &vnm); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(&vnm.Info, cfg.VirtualNicManagerInfo) {
		t.Errorf("virtual NIC manager info differs from config.virtualNicManagerInfo")
	}
	for _, nc := range vnm.Info.NetConfig {
		for _, v := range nc.CandidateVnic {
			if v.Spec.Ip.IpAddress == "127.0.0.1" {
				t.Errorf("%s candidate %s at 127.0.0.1", nc.NicType, v.Device)
			}
		}
		if nc.NicType == "management" && len(nc.SelectedVnic) == 0 {
			t.Error("no management vmkernel NIC selected")
		}
	}

	var ss mo.HostStorageSystem
	if err := pc.RetrieveOne(ctx, *host.ConfigManager.StorageSystem, []string{"storageDeviceInfo"}, &ss); err != nil {
		t.Fatal(err)
	}
	want := hbaDevices(cfg.StorageDevice.HostBusAdapter)
	if got := hbaDevices(ss.StorageDeviceInfo.HostBusAdapter); !reflect.DeepEqual(got, want) || len(want) == 0 {
		t.Errorf("storage system HBAs %v, host config %v", got, want)
	}
	storage := object.NewHostStorageSystem(c, *host.ConfigManager.StorageSystem)
	if err := storage.RescanAllHba(ctx); err != nil {
		t.Fatal(err)
	}
	if err := pc.RetrieveOne(ctx, *host.ConfigManager.StorageSystem, []string{"storageDeviceInfo"}, &ss); err != nil {
		t.Fatal(err)
	}
	if got := hbaDevices(ss.StorageDeviceInfo.HostBusAdapter); !reflect.DeepEqual(got, want) {
		t.Errorf("after RescanAllHba: HBAs %v, want %v", got, want)
	}

	// A change through the network system is the host's too.
	netsys := object.NewHostNetworkSystem(c, *host.ConfigManager.NetworkSystem)
	if err := netsys.AddVirtualSwitch(ctx, "vSwitch-test", nil); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, sw := range s.Host(name).Config.Network.Vswitch {
		found = found || sw.Name == "vSwitch-test"
	}
	if !found {
		t.Error("vSwitch added through the network system missing from config.network")
	}
}
