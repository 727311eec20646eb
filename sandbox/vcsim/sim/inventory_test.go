package sim

import (
	"testing"
	"time"
)

func TestDefaultInventoryLoads(t *testing.T) {
	start := time.Now()
	s := newTestSim(t)
	t.Logf("loaded in %s", time.Since(start))
	h := s.Host("esx-gpu-01.lab.local")
	if h == nil {
		t.Fatal("host missing")
	}
	if h.Config.Product.Version != "8.0.2" || h.Config.Product.ApiVersion != "8.0.2.0" {
		t.Errorf("product = %+v", h.Config.Product)
	}
	if s.Host("esx-legacy-01.lab.local").Config.Product.ApiVersion != "6.7" {
		t.Errorf("6.7 api version")
	}
	var intel bool
	for _, d := range h.Hardware.PciDevice {
		if d.Id == "0000:18:00.0" {
			intel = d.VendorId == int16(-32634) // 0x8086 as int16 (govmomi #2248)
		}
	}
	if !intel {
		t.Error("Intel vendor id not stored as negative int16")
	}
	if h.Summary.RebootRequired {
		t.Error("esx-gpu-01 has no pending change")
	}
	if !s.Host("esx-gpu-02.lab.local").Summary.RebootRequired {
		t.Error("enabled-not-active device should require a reboot")
	}
}

// pyvmomi negotiates its wire version from the advertised API version; below 7.0 it would drop
// applyNow and hardwareLabel from UpdatePassthruConfig.
func TestAdvertisesCurrentAPIVersion(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	if v := c.ServiceContent.About.ApiVersion; v != vCenterAPIVersion {
		t.Errorf("apiVersion = %s, want %s", v, vCenterAPIVersion)
	}
}
