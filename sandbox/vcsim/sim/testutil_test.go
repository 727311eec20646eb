package sim

import (
	"context"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/simulator"
)

// defaultInventoryPath is inventory/default.yaml relative to this package.
func defaultInventoryPath() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "inventory", "default.yaml")
}

// newTestSim loads the default inventory with a short reboot delay.
func newTestSim(t testing.TB) *Simulator {
	t.Helper()
	inv, err := LoadInventoryFile(defaultInventoryPath())
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(inv, Options{RebootDelay: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// connect serves the simulator over HTTP and logs a govmomi client in, so every call crosses
// the SOAP dispatch like pyvmomi's do.
func connect(t testing.TB, s *Simulator) *govmomi.Client {
	t.Helper()
	srv := s.Service.NewServer()
	t.Cleanup(srv.Close)
	ctx := context.Background()
	c, err := govmomi.NewClient(ctx, srv.URL, true)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var _ = simulator.Fault
