package sim

import (
	"reflect"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The upstream ESXi template (simulator/esx/host_system.go) gives every host a full
// configManager, but NewHostSystem (host_system.go) creates only the datastore, network, virtual
// NIC, advanced option, firewall, storage and certificate managers; the other references
// (serviceSystem, dateTimeSystem, autoStartManager, vsanSystem, memoryManager, ...) name
// objects that don't exist and are the same value on every host, so reading through them fails
// with ManagedObjectNotFound. hostManagers creates the four a client is most likely to read, one
// per host, with the state of a freshly installed ESXi host, and unsets the references that
// still point nowhere (a client then sees an unset manager instead of a broken one).

// hostServiceSystem is HostServiceSystem with the services every ESXi host lists.
type hostServiceSystem struct {
	mo.HostServiceSystem
}

// defaultServices is serviceInfo.service of a fresh ESXi 7/8 host (vSphere Client, Host >
// Configure > Services): SSH and the ESXi Shell off, NTP off until configured, the rest on.
func defaultServices() []types.HostService {
	svc := func(key, label string, running bool, policy types.HostServicePolicy, rules ...string) types.HostService {
		return types.HostService{Key: key, Label: label, Running: running, Policy: string(policy), Ruleset: rules, Uninstallable: false}
	}
	return []types.HostService{
		svc("DCUI", "Direct Console UI", true, types.HostServicePolicyOn),
		svc("TSM", "ESXi Shell", false, types.HostServicePolicyOff),
		svc("TSM-SSH", "SSH", false, types.HostServicePolicyOff, "sshServer"),
		svc("lbtd", "Load-Based Teaming Daemon", true, types.HostServicePolicyOn),
		svc("ntpd", "NTP Daemon", false, types.HostServicePolicyOff, "ntpClient"),
		svc("sfcbd-watchdog", "CIM Server", false, types.HostServicePolicyOn, "CIMHttpServer", "CIMHttpsServer"),
		svc("vpxa", "VMware vCenter Agent", true, types.HostServicePolicyOn, "vpxHeartbeats"),
	}
}

func (s *hostServiceSystem) service(ctx *simulator.Context, id string, f func(*types.HostService)) types.BaseMethodFault {
	for i := range s.ServiceInfo.Service {
		if s.ServiceInfo.Service[i].Key == id {
			list := append([]types.HostService(nil), s.ServiceInfo.Service...)
			f(&list[i])
			ctx.Update(s, []types.PropertyChange{{Name: "serviceInfo.service", Val: list}})
			return nil
		}
	}
	return &types.NotFound{}
}

func (s *hostServiceSystem) StartService(ctx *simulator.Context, req *types.StartService) soap.HasFault {
	body := &methods.StartServiceBody{}
	if f := s.service(ctx, req.Id, func(h *types.HostService) { h.Running = true }); f != nil {
		body.Fault_ = simulator.Fault("", f)
		return body
	}
	body.Res = &types.StartServiceResponse{}
	return body
}

func (s *hostServiceSystem) StopService(ctx *simulator.Context, req *types.StopService) soap.HasFault {
	body := &methods.StopServiceBody{}
	if f := s.service(ctx, req.Id, func(h *types.HostService) { h.Running = false }); f != nil {
		body.Fault_ = simulator.Fault("", f)
		return body
	}
	body.Res = &types.StopServiceResponse{}
	return body
}

func (s *hostServiceSystem) RestartService(ctx *simulator.Context, req *types.RestartService) soap.HasFault {
	body := &methods.RestartServiceBody{}
	if f := s.service(ctx, req.Id, func(h *types.HostService) { h.Running = true }); f != nil {
		body.Fault_ = simulator.Fault("", f)
		return body
	}
	body.Res = &types.RestartServiceResponse{}
	return body
}

func (s *hostServiceSystem) UpdateServicePolicy(ctx *simulator.Context, req *types.UpdateServicePolicy) soap.HasFault {
	body := &methods.UpdateServicePolicyBody{}
	if !validServicePolicy(req.Policy) {
		body.Fault_ = simulator.Fault("", &types.InvalidArgument{InvalidProperty: "policy"})
		return body
	}
	if f := s.service(ctx, req.Id, func(h *types.HostService) { h.Policy = req.Policy }); f != nil {
		body.Fault_ = simulator.Fault("", f)
		return body
	}
	body.Res = &types.UpdateServicePolicyResponse{}
	return body
}

func validServicePolicy(p string) bool {
	for _, v := range types.HostServicePolicy("").Strings() {
		if v == p {
			return true
		}
	}
	return false
}

func (s *hostServiceSystem) RefreshServices(*simulator.Context, *types.RefreshServices) soap.HasFault {
	return &methods.RefreshServicesBody{Res: &types.RefreshServicesResponse{}}
}

// hostDateTimeSystem is HostDateTimeSystem: time zone UTC, no NTP server, the host clock the
// simulator's.
type hostDateTimeSystem struct {
	mo.HostDateTimeSystem
}

func (d *hostDateTimeSystem) QueryDateTime(*simulator.Context, *types.QueryDateTime) soap.HasFault {
	return &methods.QueryDateTimeBody{Res: &types.QueryDateTimeResponse{Returnval: time.Now().UTC()}}
}

func (d *hostDateTimeSystem) RefreshDateTimeSystem(*simulator.Context, *types.RefreshDateTimeSystem) soap.HasFault {
	return &methods.RefreshDateTimeSystemBody{Res: &types.RefreshDateTimeSystemResponse{}}
}

// hostAutoStartManager is HostAutoStartManager with ESXi's defaults: autostart off, 120 s start
// and stop delays, stop action PowerOff, no per-VM entries.
type hostAutoStartManager struct {
	mo.HostAutoStartManager
}

// hostVsanSystem is HostVsanSystem of a host not in a vSAN cluster: config.enabled false.
type hostVsanSystem struct {
	mo.HostVsanSystem
}

// hostManagers gives host h its own service, date/time, autostart and vSAN systems and unsets
// configManager references that name no object. Runs at load time.
func (s *Simulator) hostManagers(h *simulator.HostSystem) {
	id := h.Self.Value
	svc := &hostServiceSystem{}
	svc.Self = types.ManagedObjectReference{Type: "HostServiceSystem", Value: "serviceSystem-" + id}
	svc.ServiceInfo.Service = defaultServices()

	dt := &hostDateTimeSystem{}
	dt.Self = types.ManagedObjectReference{Type: "HostDateTimeSystem", Value: "dateTimeSystem-" + id}
	dt.DateTimeInfo = types.HostDateTimeInfo{
		TimeZone:            types.HostDateTimeSystemTimeZone{Key: "UTC", Name: "UTC", Description: "UTC", GmtOffset: 0},
		SystemClockProtocol: string(types.HostDateTimeInfoProtocolNtp),
		NtpConfig:           &types.HostNtpConfig{},
	}

	as := &hostAutoStartManager{}
	as.Self = types.ManagedObjectReference{Type: "HostAutoStartManager", Value: "autoStartManager-" + id}
	as.Config.Defaults = &types.AutoStartDefaults{
		Enabled: types.NewBool(false), StartDelay: 120, StopDelay: 120,
		WaitForHeartbeat: types.NewBool(false), StopAction: "PowerOff",
	}

	vsan := &hostVsanSystem{}
	vsan.Self = types.ManagedObjectReference{Type: "HostVsanSystem", Value: "vsanSystem-" + id}
	vsan.Config = types.VsanHostConfigInfo{Enabled: types.NewBool(false), HostSystem: &h.Self}

	cm := &h.ConfigManager
	for _, m := range []struct {
		field **types.ManagedObjectReference
		obj   mo.Reference
	}{
		{&cm.ServiceSystem, svc},
		{&cm.DateTimeSystem, dt},
		{&cm.AutoStartManager, as},
		{&cm.VsanSystem, vsan},
	} {
		ref := s.Map.Put(m.obj).Reference()
		*m.field = &ref
	}

	v := reflect.ValueOf(cm).Elem()
	for i := 0; i < v.NumField(); i++ {
		ref, ok := v.Field(i).Interface().(*types.ManagedObjectReference)
		if ok && ref != nil && s.Map.Get(*ref) == nil {
			v.Field(i).Set(reflect.Zero(v.Field(i).Type()))
		}
	}
}
