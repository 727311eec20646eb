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

// Every configManager reference of every host names an object whose properties read whole;
// the service, date/time, autostart and vSAN systems exist per host with ESXi's defaults, and
// StartService changes serviceInfo.
func TestHostConfigManagers(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	pc := property.DefaultCollector(c)
	seen := map[types.ManagedObjectReference]string{}
	for _, e := range s.Map.All("HostSystem") {
		h := e.(*simHost)
		var host mo.HostSystem
		if err := pc.RetrieveOne(ctx, h.Self, []string{"configManager"}, &host); err != nil {
			t.Fatal(err)
		}
		cm := host.ConfigManager
		for _, want := range []**types.ManagedObjectReference{&cm.ServiceSystem, &cm.DateTimeSystem, &cm.AutoStartManager, &cm.VsanSystem} {
			if *want == nil {
				t.Errorf("%s: a manager is unset: %+v", h.Name, cm)
			}
		}
		v := reflect.ValueOf(cm)
		for i := 0; i < v.NumField(); i++ {
			ref, ok := v.Field(i).Interface().(*types.ManagedObjectReference)
			if !ok || ref == nil {
				continue
			}
			if other, dup := seen[*ref]; dup {
				t.Errorf("%s: %s shared with %s", h.Name, ref, other)
			}
			seen[*ref] = h.Name
			var content []types.ObjectContent
			if err := pc.Retrieve(ctx, []types.ManagedObjectReference{*ref}, nil, &content); err != nil {
				t.Errorf("%s configManager.%s %s: %v", h.Name, v.Type().Field(i).Name, ref, err)
			}
		}
		var svc mo.HostServiceSystem
		var dt mo.HostDateTimeSystem
		var as mo.HostAutoStartManager
		var vsan mo.HostVsanSystem
		for ref, dst := range map[*types.ManagedObjectReference]any{cm.ServiceSystem: &svc, cm.DateTimeSystem: &dt, cm.AutoStartManager: &as, cm.VsanSystem: &vsan} {
			if err := pc.RetrieveOne(ctx, *ref, nil, dst); err != nil {
				t.Fatal(err)
			}
			checkEnums(t, h.Name+" "+ref.Type, reflect.ValueOf(dst))
		}
		keys := map[string]types.HostService{}
		for _, x := range svc.ServiceInfo.Service {
			keys[x.Key] = x
		}
		if ssh, ok := keys["TSM-SSH"]; !ok || ssh.Running || ssh.Policy != "off" {
			t.Errorf("%s: TSM-SSH %+v", h.Name, ssh)
		}
		if _, ok := keys["ntpd"]; !ok {
			t.Errorf("%s: no ntpd", h.Name)
		}
		if dt.DateTimeInfo.TimeZone.Key != "UTC" {
			t.Errorf("%s: time zone %+v", h.Name, dt.DateTimeInfo.TimeZone)
		}
		if d := as.Config.Defaults; d == nil || d.Enabled == nil || *d.Enabled || d.StartDelay != 120 {
			t.Errorf("%s: autostart defaults %+v", h.Name, d)
		}
		if vsan.Config.Enabled == nil || *vsan.Config.Enabled {
			t.Errorf("%s: vsan config %+v", h.Name, vsan.Config)
		}
	}

	h := s.hostByName("esx-gpu-01.lab.local")
	ss := object.NewHostServiceSystem(c, *h.ConfigManager.ServiceSystem)
	if err := ss.Start(ctx, "TSM-SSH"); err != nil {
		t.Fatal(err)
	}
	list, err := ss.Service(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range list {
		if x.Key == "TSM-SSH" && !x.Running {
			t.Error("TSM-SSH not running after StartService")
		}
	}
	if err := ss.Start(ctx, "no-such"); err == nil {
		t.Error("StartService of an unknown service succeeded")
	}
	dts := object.NewHostDateTimeSystem(c, *h.ConfigManager.DateTimeSystem)
	if _, err := dts.Query(ctx); err != nil {
		t.Error(err)
	}
}
