package sim

import (
	"sync"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// sessionExpiry invalidates every session that existed when ExpireSessions was called, as a
// vCenter restart or idle timeout does: the next call with such a session gets
// NotAuthenticated, and a new Login works (vSphere API reference, SessionManager).
type sessionExpiry struct {
	mu     sync.Mutex
	cutoff time.Time
}

// ExpireSessions makes every current session invalid.
func (s *Simulator) ExpireSessions() {
	s.sessions.mu.Lock()
	s.sessions.cutoff = time.Now()
	s.sessions.mu.Unlock()
}

// check runs before each method. Sessions without a login time are the in-process client's.
func (e *sessionExpiry) check(ctx *simulator.Context, method *simulator.Method) types.BaseMethodFault {
	e.mu.Lock()
	cutoff := e.cutoff
	e.mu.Unlock()
	if cutoff.IsZero() || ctx.Session == nil || ctx.Session.LoginTime.IsZero() || ctx.Session.LoginTime.After(cutoff) {
		return nil
	}
	// Forget the session so its cookie maps to nothing from now on.
	other := &simulator.Context{Context: ctx.Context, Map: ctx.Map, Session: &simulator.Session{}}
	ctx.Map.SessionManager().TerminateSession(other, &types.TerminateSession{SessionId: []string{ctx.Session.Key}})
	switch method.Name {
	case "Login", "LoginByToken", "LoginExtensionByCertificate", "RetrieveServiceContent":
		// Calls that need no session proceed as if the stale cookie had not been sent.
		ctx.Session = nil
		return nil
	}
	return &types.NotAuthenticated{NoPermission: types.NoPermission{Object: &method.This, PrivilegeId: "System.View"}}
}
