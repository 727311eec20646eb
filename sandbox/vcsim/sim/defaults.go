package sim

import (
	"fmt"

	"github.com/vmware/govmomi/vim25/types"
)

// This file fills in the values vCenter always reports and the upstream simulator leaves unset
// (cluster HA/DRS settings, distributed switch and port group policies, guest OS descriptors).
// Each default is vCenter's for a new object (vSphere Client defaults; vSphere API reference for
// the types). Values already set are kept.

// completeClusterConfig gives a cluster's configurationEx vCenter's defaults: DRS
// enableVmBehaviorOverrides and vmotionRate 3; HA failoverLevel 1, the default VM settings'
// isolation response, restart timeout, VM tools monitoring (ClusterVmToolsMonitoringSettings)
// and component protection; every DRS VM override carries `enabled` (vCenter stores an override
// made without it as enabled: true, which is also what an unset value means).
func completeClusterConfig(cfg *types.ClusterConfigInfoEx) {
	drs := &cfg.DrsConfig
	if drs.Enabled == nil {
		drs.Enabled = types.NewBool(false)
	}
	if drs.EnableVmBehaviorOverrides == nil {
		drs.EnableVmBehaviorOverrides = types.NewBool(true)
	}
	if drs.DefaultVmBehavior == "" {
		drs.DefaultVmBehavior = types.DrsBehaviorFullyAutomated
	}
	if drs.VmotionRate == 0 {
		drs.VmotionRate = 3
	}
	for i := range cfg.DrsVmConfig {
		if cfg.DrsVmConfig[i].Enabled == nil {
			cfg.DrsVmConfig[i].Enabled = types.NewBool(true)
		}
	}

	das := &cfg.DasConfig
	if das.Enabled == nil {
		das.Enabled = types.NewBool(false)
	}
	if das.AdmissionControlEnabled == nil {
		das.AdmissionControlEnabled = types.NewBool(false)
	}
	if das.HostMonitoring == "" {
		das.HostMonitoring = string(types.ClusterDasConfigInfoServiceStateEnabled)
	}
	if das.VmMonitoring == "" {
		das.VmMonitoring = string(types.ClusterDasConfigInfoVmMonitoringStateVmMonitoringDisabled)
	}
	if das.VmComponentProtecting == "" {
		das.VmComponentProtecting = string(types.ClusterDasConfigInfoServiceStateDisabled)
	}
	if das.FailoverLevel == 0 {
		das.FailoverLevel = 1
	}
	if das.HBDatastoreCandidatePolicy == "" {
		das.HBDatastoreCandidatePolicy = string(types.ClusterDasConfigInfoHBDatastoreCandidateAllFeasibleDsWithUserPreference)
	}
	if das.DefaultVmSettings == nil {
		das.DefaultVmSettings = &types.ClusterDasVmSettings{}
	}
	vs := das.DefaultVmSettings
	if vs.RestartPriority == "" {
		vs.RestartPriority = string(types.ClusterDasVmSettingsRestartPriorityMedium)
	}
	if vs.RestartPriorityTimeout == 0 {
		vs.RestartPriorityTimeout = 600
	}
	if vs.IsolationResponse == "" {
		vs.IsolationResponse = string(types.ClusterDasVmSettingsIsolationResponseNone)
	}
	if vs.VmToolsMonitoringSettings == nil {
		vs.VmToolsMonitoringSettings = &types.ClusterVmToolsMonitoringSettings{
			Enabled:          types.NewBool(false),
			VmMonitoring:     string(types.ClusterDasConfigInfoVmMonitoringStateVmMonitoringDisabled),
			ClusterSettings:  types.NewBool(true),
			FailureInterval:  30,
			MinUpTime:        120,
			MaxFailures:      3,
			MaxFailureWindow: 3600,
		}
	}
	if vs.VmComponentProtectionSettings == nil {
		vs.VmComponentProtectionSettings = &types.ClusterVmComponentProtectionSettings{
			VmStorageProtectionForAPD: string(types.ClusterVmComponentProtectionSettingsStorageVmReactionDisabled),
			EnableAPDTimeoutForHosts:  types.NewBool(true),
			VmTerminateDelayForAPDSec: 180,
			VmReactionOnAPDCleared:    string(types.ClusterVmComponentProtectionSettingsVmReactionOnAPDClearedNone),
			VmStorageProtectionForPDL: string(types.ClusterVmComponentProtectionSettingsStorageVmReactionDisabled),
		}
	}
}

// dvsUplinks is the number of uplinks of a new vSphere Distributed Switch (vSphere Client
// default: 4, "Uplink 1" ... "Uplink 4").
const dvsUplinks = 4

func dvsUplinkNames() []string {
	var names []string
	for i := 1; i <= dvsUplinks; i++ {
		names = append(names, fmt.Sprintf("Uplink %d", i))
	}
	return names
}

func boolPolicy(v bool) *types.BoolPolicy {
	return &types.BoolPolicy{Value: types.NewBool(v)}
}

// defaultPortSetting is the default port config of a new distributed switch and its port groups:
// VLAN none (id 0), promiscuous mode, MAC changes and forged transmits rejected, teaming "route
// based on originating virtual port" over every uplink with link-status failure detection,
// notify switches and failback on.
func defaultPortSetting() *types.VMwareDVSPortSetting {
	return &types.VMwareDVSPortSetting{
		DVPortSetting: types.DVPortSetting{
			Blocked:                 boolPolicy(false),
			VmDirectPathGen2Allowed: boolPolicy(false),
		},
		Vlan: &types.VmwareDistributedVirtualSwitchVlanIdSpec{VlanId: 0},
		SecurityPolicy: &types.DVSSecurityPolicy{
			AllowPromiscuous: boolPolicy(false),
			MacChanges:       boolPolicy(false),
			ForgedTransmits:  boolPolicy(false),
		},
		UplinkTeamingPolicy: &types.VmwareUplinkPortTeamingPolicy{
			Policy:         &types.StringPolicy{Value: "loadbalance_srcid"},
			ReversePolicy:  boolPolicy(true),
			NotifySwitches: boolPolicy(true),
			RollingOrder:   boolPolicy(false),
			FailureCriteria: &types.DVSFailureCriteria{
				CheckSpeed:        &types.StringPolicy{Value: "minimum"},
				Speed:             &types.IntPolicy{Value: 10},
				CheckDuplex:       boolPolicy(false),
				FullDuplex:        boolPolicy(false),
				CheckErrorPercent: boolPolicy(false),
				Percentage:        &types.IntPolicy{Value: 0},
				CheckBeacon:       boolPolicy(false),
			},
			UplinkPortOrder: &types.VMwareUplinkPortOrderPolicy{ActiveUplinkPort: dvsUplinkNames()},
		},
		IpfixEnabled: boolPolicy(false),
		TxUplink:     boolPolicy(false),
	}
}

// guestDescriptor fills the GuestOsDescriptor fields upstream's QueryConfigOptionEx
// (environment_browser.go) leaves empty, with the values vCenter reports for a current 64-bit
// guest: LSI Logic SAS recommended among the usual disk controllers, vmxnet3 recommended, BIOS
// and EFI supported (BIOS recommended, as for "Other 64-bit"), fully supported, 2 GB memory
// recommended.
func guestDescriptor(d *types.GuestOsDescriptor) {
	if d.FullName == "" {
		d.FullName = d.Id
	}
	if d.SupportedMaxCPUs == 0 {
		d.SupportedMaxCPUs = 768
		d.NumSupportedPhysicalSockets = 128
		d.NumSupportedCoresPerSocket = 768
	}
	if d.SupportedMaxMemMB == 0 {
		d.SupportedMinMemMB = 4
		d.SupportedMaxMemMB = 25165824
		d.RecommendedMemMB = 2048
	}
	if d.RecommendedColorDepth == 0 {
		d.RecommendedColorDepth = 32
	}
	if len(d.SupportedDiskControllerList) == 0 {
		d.SupportedDiskControllerList = []string{
			"VirtualLsiLogicSASController", "ParaVirtualSCSIController", "VirtualLsiLogicController",
			"VirtualBusLogicController", "VirtualAHCIController", "VirtualIDEController", "VirtualNVMEController",
		}
	}
	if d.RecommendedDiskController == "" {
		d.RecommendedDiskController = "VirtualLsiLogicSASController"
	}
	if d.SupportedNumDisks == 0 {
		d.SupportedNumDisks = 4
	}
	if d.RecommendedDiskSizeMB == 0 {
		d.RecommendedDiskSizeMB = 16384
	}
	if d.RecommendedCdromController == "" {
		d.RecommendedCdromController = "VirtualAHCIController"
	}
	if len(d.SupportedEthernetCard) == 0 {
		d.SupportedEthernetCard = []string{"VirtualE1000", "VirtualE1000e", "VirtualVmxnet3"}
	}
	if d.RecommendedEthernetCard == "" {
		d.RecommendedEthernetCard = "VirtualVmxnet3"
	}
	if len(d.SupportedFirmware) == 0 {
		d.SupportedFirmware = []string{string(types.GuestOsDescriptorFirmwareTypeBios), string(types.GuestOsDescriptorFirmwareTypeEfi)}
	}
	if d.RecommendedFirmware == "" {
		d.RecommendedFirmware = string(types.GuestOsDescriptorFirmwareTypeBios)
	}
	if d.SupportLevel == "" {
		d.SupportLevel = string(types.GuestOsDescriptorSupportLevelSupported)
		d.SupportedForCreate = true
	}
	if d.VRAMSizeInKB.Max == 0 {
		d.VRAMSizeInKB = types.IntOption{Min: 1024, Max: 262144, DefaultValue: 4096}
	}
	if d.NumSupportedFloppyDevices == 0 {
		d.NumSupportedFloppyDevices = 2
	}
	d.SupportsWakeOnLan = true
	d.SupportsMemoryHotAdd = true
	d.SupportsCpuHotAdd = true
	d.SupportsHotPlugPCI = true
}

// completeOptionDefs gives every OptionDef an optionType (required in the WSDL): upstream's
// NewHostSystem (host_system.go) adds its container-backing option to config.optionDef without
// one. It is a free-form string option.
func completeOptionDefs(defs []types.OptionDef) {
	for i := range defs {
		if defs[i].OptionType == nil {
			defs[i].OptionType = &types.StringOption{}
		}
		if defs[i].Label == "" {
			defs[i].Label = defs[i].Key
		}
		if defs[i].Summary == "" {
			defs[i].Summary = defs[i].Key
		}
	}
}

// completePortSetting fills the policies a port setting lacks from defaultPortSetting (the
// switch's uplink port group, which upstream's CreateDVS_Task makes with a trunk VLAN and
// teaming only, gets security, blocked and Gen2 values).
func completePortSetting(ps *types.VMwareDVSPortSetting) {
	d := defaultPortSetting()
	if ps.Blocked == nil {
		ps.Blocked = d.Blocked
	}
	if ps.VmDirectPathGen2Allowed == nil {
		ps.VmDirectPathGen2Allowed = d.VmDirectPathGen2Allowed
	}
	if ps.Vlan == nil {
		ps.Vlan = d.Vlan
	}
	if ps.SecurityPolicy == nil {
		ps.SecurityPolicy = d.SecurityPolicy
	}
	if ps.UplinkTeamingPolicy == nil {
		ps.UplinkTeamingPolicy = d.UplinkTeamingPolicy
	}
	if ps.UplinkTeamingPolicy.FailureCriteria == nil {
		ps.UplinkTeamingPolicy.FailureCriteria = d.UplinkTeamingPolicy.FailureCriteria
	}
	if ps.UplinkTeamingPolicy.UplinkPortOrder == nil {
		ps.UplinkTeamingPolicy.UplinkPortOrder = d.UplinkTeamingPolicy.UplinkPortOrder
	}
	if ps.IpfixEnabled == nil {
		ps.IpfixEnabled = d.IpfixEnabled
	}
	if ps.TxUplink == nil {
		ps.TxUplink = d.TxUplink
	}
}
