package sim

import (
	"context"
	"testing"

	"github.com/vmware/govmomi/property"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/types"
)

// HostSystem.recentTask lists the tasks started on the host, as vCenter's ManagedEntity.recentTask
// does, with vCenter's descriptionId ("HostSystem.reboot", not "HostSystem.rebootHost") and the
// SOAP method as info.name: the operator reads them to tell a rolling-reboot step it sent from
// one it only recorded.
func TestRecentTasksOfAHostNameTheirVmodlMethod(t *testing.T) {
	s := newTestSim(t)
	c := connect(t, s).Client
	ctx := context.Background()
	const name = "esx-gpu-02.lab.local"
	host := hostObj(c, s, name)

	enter, err := host.EnterMaintenanceMode(ctx, 10, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := enter.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	reboot, err := rebootHost(c, host, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := reboot.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	var h mo.HostSystem
	if err := property.DefaultCollector(c).RetrieveOne(ctx, host.Reference(), []string{"recentTask"}, &h); err != nil {
		t.Fatal(err)
	}
	var tasks []mo.Task
	if err := property.DefaultCollector(c).Retrieve(ctx, h.RecentTask, []string{"info"}, &tasks); err != nil {
		t.Fatal(err)
	}
	got := map[string]types.TaskInfo{}
	for _, task := range tasks {
		got[task.Info.DescriptionId] = task.Info
	}
	for id, method := range map[string]string{
		"HostSystem.enterMaintenanceMode": "EnterMaintenanceMode_Task",
		"HostSystem.reboot":               "RebootHost_Task",
	} {
		info, ok := got[id]
		switch {
		case !ok:
			t.Errorf("recentTask of %s has no %s task: %v", name, id, keys(got))
		case info.Name != method || info.State != types.TaskInfoStateSuccess:
			t.Errorf("%s: name %q state %s, want %s success", id, info.Name, info.State, method)
		case info.Entity == nil || *info.Entity != host.Reference() || info.QueueTime.IsZero():
			t.Errorf("%s: entity %v queueTime %v", id, info.Entity, info.QueueTime)
		}
	}
}

func keys(m map[string]types.TaskInfo) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
