package sim

import (
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/mo"
)

func TestGenerateRoundTrips(t *testing.T) {
	inv := Generate(GenerateOptions{Hosts: 6, DevicesPerHost: 3, VMs: 10, Clusters: 2, Folders: 3})
	data, err := inv.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseInventory(data)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(back.Datacenters[0].Clusters[0].Hosts); n != 3 {
		t.Errorf("hosts in cluster 1 = %d, want 3", n)
	}
	if n := len(back.Datacenters[0].VMs); n != 10 {
		t.Errorf("vms = %d", n)
	}
	if f := back.Datacenters[0].VMs[4].Folder; f != "team-02" {
		t.Errorf("vm 5 folder = %q, want team-02", f)
	}
	s, err := New(back, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if vm := s.vmByName("vm-00005"); s.Map.Get(*vm.Parent).(mo.Entity).Entity().Name != "team-02" {
		t.Errorf("vm-00005 not loaded into team-02")
	}
}

// BenchmarkLoadLarge measures loading 64×8 hosts (512 hosts, 8 GPUs each) and 1000 VMs.
func BenchmarkLoadLarge(b *testing.B) {
	inv := Generate(GenerateOptions{Hosts: 512, DevicesPerHost: 8, VMs: 1000, Clusters: 64})
	for i := 0; i < b.N; i++ {
		start := time.Now()
		s, err := New(inv, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(time.Since(start).Seconds(), "s/load")
		s.Close()
	}
}
