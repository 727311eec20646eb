package sim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/simulator/esx"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// One truth per host for network and storage. Upstream's NewHostSystem (host_system.go) builds
// the host's network, virtual NIC and storage managers from package templates before the host
// is configured: HostNetworkSystem.networkInfo has one vSwitch without uplink or MTU,
// HostVirtualNicManager.info lists the template's vmk0 at 127.0.0.1 (one list shared by every
// host), HostStorageSystem.storageDeviceInfo points at the template's HBAs (also shared). The
// inventory's host config.network / config.storageDevice said otherwise. shareHostTruth makes
// the managers read the host's own values: networkInfo and storageDeviceInfo are the same
// objects as config.network and config.storageDevice (a change made through the network
// system's methods shows in both), networkConfig and the NIC manager's info are derived from
// them. Runs at load time.
func (s *Simulator) shareHostTruth(h *simulator.HostSystem) {
	cm := h.ConfigManager
	if cm.NetworkSystem != nil {
		if ns, ok := s.Map.Get(*cm.NetworkSystem).(*simulator.HostNetworkSystem); ok {
			ns.NetworkInfo = h.Config.Network
			ns.NetworkConfig = networkConfig(h.Config.Network)
		}
	}
	info := virtualNicManagerInfo(esx.VirtualNicManagerNetConfig, h.Config.Network)
	h.Config.VirtualNicManagerInfo = &info
	if cm.VirtualNicManager != nil {
		if vm, ok := s.Map.Get(*cm.VirtualNicManager).(*simulator.HostVirtualNicManager); ok {
			vm.Info = info
		}
	}
	if cm.StorageSystem != nil {
		if ss, ok := s.Map.Get(*cm.StorageSystem).(*simulator.HostStorageSystem); ok {
			ss.StorageDeviceInfo = h.Config.StorageDevice
			ss.HBA = nil
		}
	}
}

// storageSystem keeps RescanAllHba from replacing the host's HBAs: upstream's
// (host_storage_system.go) swaps them with a Fibre Channel test set on every call. A rescan
// finds the same adapters.
type storageSystem struct {
	*simulator.HostStorageSystem
}

func init() {
	OverrideOf(func(_ *simulator.Context, ss *simulator.HostStorageSystem) mo.Reference {
		return &storageSystem{ss}
	}, "RescanAllHba")
}

func (ss *storageSystem) RescanAllHba(*simulator.Context, *types.RescanAllHba) soap.HasFault {
	return &methods.RescanAllHbaBody{Res: new(types.RescanAllHbaResponse)}
}
