package sim

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

type passthruCase struct {
	host    string
	configs []types.HostPciPassthruConfig
}

func updatePassthru(t *testing.T, c *vim25.Client, s *Simulator, host string, cfg ...types.HostPciPassthruConfig) error {
	t.Helper()
	req := &types.UpdatePassthruConfig{This: *s.Host(host).ConfigManager.PciPassthruSystem}
	for i := range cfg {
		req.Config = append(req.Config, &cfg[i])
	}
	_, err := methods.UpdatePassthruConfig(context.Background(), c, req)
	return err
}

// passthruInfo reads host config.pciPassthruInfo and summary.rebootRequired over SOAP.
func passthruInfo(t *testing.T, c *vim25.Client, s *Simulator, host string) (map[string]types.HostPciPassthruInfo, bool) {
	t.Helper()
	var h mo.HostSystem
	pc := property.DefaultCollector(c)
	if err := pc.RetrieveOne(context.Background(), s.Host(host).Self, []string{"config.pciPassthruInfo", "summary.rebootRequired"}, &h); err != nil {
		t.Fatal(err)
	}
	out := map[string]types.HostPciPassthruInfo{}
	for _, b := range h.Config.PciPassthruInfo {
		i := b.GetHostPciPassthruInfo()
		out[i.Id] = *i
	}
	return out, h.Summary.RebootRequired
}

func wantConfigFault(t *testing.T, err error, contains string) {
	t.Helper()
	if err == nil {
		t.Fatalf("want HostConfigFault containing %q, got success", contains)
	}
	if !soap.IsSoapFault(err) {
		t.Fatalf("want SOAP fault, got %v", err)
	}
	if _, ok := soap.ToSoapFault(err).VimFault().(types.HostConfigFault); !ok {
		t.Fatalf("want HostConfigFault, got %T (%v)", soap.ToSoapFault(err).VimFault(), err)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Errorf("fault %q does not mention %q", err, contains)
	}
}

func TestUpdatePassthruConfigRefusals(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	tests := []struct {
		name, host, id, label, want string
	}{
		{"unknown device", "esx-gpu-01.lab.local", "0000:99:00.0", "", "not found"},
		{"not capable", "esx-gpu-02.lab.local", "0000:00:14.0", "", "not capable"},
		{"no IOMMU", "esx-noiommu-01.lab.local", "0000:3b:00.0", "", "not capable"},
		{"label before 7.0.2", "esx-legacy-01.lab.local", "0000:3b:00.0", "t4", "7.0.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := passthruInfo(t, c, s, tt.host)
			err := updatePassthru(t, c, s, tt.host, types.HostPciPassthruConfig{Id: tt.id, PassthruEnabled: true, HardwareLabel: tt.label})
			wantConfigFault(t, err, tt.want)
			after, _ := passthruInfo(t, c, s, tt.host)
			if len(before) != len(after) || after[tt.id] != before[tt.id] {
				t.Errorf("refused call changed state: %+v -> %+v", before[tt.id], after[tt.id])
			}
		})
	}
}

func TestUpdatePassthruConfigStates(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	no, yes := types.NewBool(false), types.NewBool(true)

	// Host that can rebind without reboot: applyNow unset or true activates at once.
	const rebind = "esx-gpu-01.lab.local"
	if err := updatePassthru(t, c, s, rebind, types.HostPciPassthruConfig{Id: "0000:af:00.0", PassthruEnabled: true, HardwareLabel: "t4"}); err != nil {
		t.Fatal(err)
	}
	info, reboot := passthruInfo(t, c, s, rebind)
	if d := info["0000:af:00.0"]; !d.PassthruEnabled || !d.PassthruActive || d.HardwareLabel != "t4" || reboot {
		t.Errorf("applyNow default on rebind host: %+v reboot=%v", d, reboot)
	}
	// applyNow=false waits for a reboot even where rebind is possible.
	if err := updatePassthru(t, c, s, rebind, types.HostPciPassthruConfig{Id: "0000:18:00.1", PassthruEnabled: true, ApplyNow: no}); err != nil {
		t.Fatal(err)
	}
	info, reboot = passthruInfo(t, c, s, rebind)
	if d := info["0000:18:00.1"]; !d.PassthruEnabled || d.PassthruActive || !reboot {
		t.Errorf("applyNow=false: %+v reboot=%v", d, reboot)
	}

	// Host without rebind: applyNow=true still needs a reboot; dependent functions follow.
	const noRebind = "esx-gpu-02.lab.local"
	if err := updatePassthru(t, c, s, noRebind, types.HostPciPassthruConfig{Id: "0000:5e:00.0", PassthruEnabled: true, ApplyNow: yes}); err != nil {
		t.Fatal(err)
	}
	info, reboot = passthruInfo(t, c, s, noRebind)
	for _, id := range []string{"0000:5e:00.0", "0000:5e:00.1"} {
		if d := info[id]; !d.PassthruEnabled || d.PassthruActive {
			t.Errorf("%s: %+v", id, d)
		}
	}
	if !reboot {
		t.Error("rebootRequired should be true")
	}
	// Disabling the audio function disables the GPU with it.
	if err := updatePassthru(t, c, s, noRebind, types.HostPciPassthruConfig{Id: "0000:5e:00.1", PassthruEnabled: false}); err != nil {
		t.Fatal(err)
	}
	info, _ = passthruInfo(t, c, s, noRebind)
	if info["0000:5e:00.0"].PassthruEnabled || info["0000:5e:00.1"].PassthruEnabled {
		t.Error("dependent devices should be disabled together")
	}
	// Contradicting values for one dependent group are refused.
	err := updatePassthru(t, c, s, noRebind,
		types.HostPciPassthruConfig{Id: "0000:5e:00.0", PassthruEnabled: true},
		types.HostPciPassthruConfig{Id: "0000:5e:00.1", PassthruEnabled: false})
	wantConfigFault(t, err, "Conflicting")
}

func TestPassthruChangeNotifiesWatchers(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	host := s.Host("esx-gpu-03.lab.local").Self
	done := make(chan error, 1)
	go func() {
		pc := property.DefaultCollector(c)
		done <- property.Wait(ctx, pc, host, []string{"summary.rebootRequired"}, func(changes []types.PropertyChange) bool {
			for _, ch := range changes {
				if v, ok := ch.Val.(bool); ok && v {
					return true
				}
			}
			return false
		})
	}()
	time.Sleep(100 * time.Millisecond)
	if err := updatePassthru(t, c, s, "esx-gpu-03.lab.local", types.HostPciPassthruConfig{Id: "0000:3b:00.0", PassthruEnabled: true, ApplyNow: types.NewBool(false)}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("WaitForUpdatesEx did not see rebootRequired: %v", err)
	}
}

// The moref carries vSphere's type name; pyVmomi can't deserialize an unknown one.
func TestPassthruSystemMorefType(t *testing.T) {
	s := newTestSim(t)
	if ref := s.Host("esx-gpu-01.lab.local").ConfigManager.PciPassthruSystem; ref.Type != "HostPciPassthruSystem" {
		t.Errorf("moref type = %s", ref.Type)
	}
}
