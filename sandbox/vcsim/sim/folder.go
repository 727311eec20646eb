package sim

import (
	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/mo"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// The upstream simulator's Folder.MoveIntoFolderTask (simulator/folder.go) re-parents each
// entity with folderRemoveReference and folderPutChild, and neither publishes a property
// change: folderPutChild sets `parent` through Registry.PutEntity → Registry.Put, which tells
// property collectors only that the object "entered", and WaitForUpdatesEx
// (simulator/property_collector.go) drops an enter for an object its filter already holds. So a
// client watching a VM's `parent`, or a folder's `childEntity`, never hears of the move, while
// vCenter reports both. movingFolder runs the upstream move inside its own task and publishes
// them before that task completes. (Rename_Task on a folder already publishes `name`:
// simulator/entity.go RenameTask.)
type movingFolder struct {
	*simulator.Folder
}

func init() {
	OverrideOf(func(_ *simulator.Context, f *simulator.Folder) mo.Reference {
		return &movingFolder{f}
	}, "MoveIntoFolder_Task")
}

func (f *movingFolder) MoveIntoFolderTask(ctx *simulator.Context, req *types.MoveIntoFolder_Task) soap.HasFault {
	task := simulator.CreateTask(f.Folder, "moveIntoFolder", func(*simulator.Task) (types.AnyType, types.BaseMethodFault) {
		from := parents(ctx, req.List)
		res := f.Folder.MoveIntoFolderTask(ctx, req).(*methods.MoveIntoFolder_TaskBody).Res
		fault := waitTask(ctx, res.Returnval)
		// Upstream moves the entities one by one and stops at the first it can't move: what
		// moved before a fault has moved.
		publishMoves(ctx, from)
		return nil, fault
	})
	return &methods.MoveIntoFolder_TaskBody{Res: &types.MoveIntoFolder_TaskResponse{Returnval: task.Run(ctx)}}
}

// parents records the current parent of each entity, to compare with after a move.
func parents(ctx *simulator.Context, refs []types.ManagedObjectReference) map[types.ManagedObjectReference]types.ManagedObjectReference {
	out := map[types.ManagedObjectReference]types.ManagedObjectReference{}
	for _, ref := range refs {
		if e, ok := ctx.Map.Get(ref).(mo.Entity); ok {
			ctx.WithLock(e, func() {
				if p := e.Entity().Parent; p != nil {
					out[ref] = *p
				}
			})
		}
	}
	return out
}

// publishMoves notifies the new `parent` of every entity whose parent changed since `from`,
// and the `childEntity` of the folders it left and entered.
func publishMoves(ctx *simulator.Context, from map[types.ManagedObjectReference]types.ManagedObjectReference) {
	folders := map[types.ManagedObjectReference]bool{}
	for ref, old := range from {
		e, ok := ctx.Map.Get(ref).(mo.Entity)
		if !ok {
			continue
		}
		ctx.WithLock(e, func() {
			p := e.Entity().Parent
			if p == nil || *p == old {
				return
			}
			now := *p
			ctx.Update(e, []types.PropertyChange{{Name: "parent", Val: &now}})
			folders[old], folders[now] = true, true
		})
	}
	for ref := range folders {
		if f, ok := ctx.Map.Get(ref).(*simulator.Folder); ok {
			ctx.WithLock(f, func() {
				list := append([]types.ManagedObjectReference(nil), f.ChildEntity...)
				ctx.Update(f, []types.PropertyChange{{Name: "childEntity", Val: list}})
			})
		}
	}
}
