package sim

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sync"
)

// A hung vCenter (admin POST /hang): the SDK port still accepts connections and reads requests
// (TLS, HTTP), but answers none of them until the hang is lifted, like a vpxd that stopped
// responding behind its reverse proxy. A request whose client gives up (closes the connection)
// while it waits is dropped unanswered and never runs; one still waiting when the hang is lifted
// runs then, as a late answer. Unlike POST /outage, nothing is refused or reset: only a client
// with a read timeout of its own ever notices.
type hangGate struct {
	mu      sync.Mutex
	release chan struct{} // nil: answering; closed when the hang is lifted
	waiting int           // requests held right now
	held    int           // requests held since the simulator started
}

// SetHang starts (true) or lifts (false) the hang; both are idempotent.
func (srv *Server) SetHang(hung bool) {
	g := &srv.hang
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case hung && g.release == nil:
		g.release = make(chan struct{})
	case !hung && g.release != nil:
		close(g.release)
		g.release = nil
	}
}

// HangState reports whether the SDK hangs, how many requests wait now and how many were held.
func (srv *Server) HangState() (hung bool, waiting, held int) {
	g := &srv.hang
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.release != nil, g.waiting, g.held
}

// withHang holds every SDK request (SOAP and GET alike) while the hang lasts.
func (srv *Server) withHang(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if srv.holdRequest(r) {
			next.ServeHTTP(w, r)
		}
	})
}

// holdRequest waits while the SDK hangs; false when the client gave up meanwhile.
func (srv *Server) holdRequest(r *http.Request) bool {
	g := &srv.hang
	g.mu.Lock()
	release := g.release
	g.mu.Unlock()
	if release == nil {
		return true
	}
	// Read the request first, as vCenter's proxy does: only then does the server watch the
	// connection, and cancel the request's context when the client closes it.
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err != nil {
		return true // a broken request: the SDK answers it as it would
	}
	g.mu.Lock()
	g.waiting++
	g.held++
	g.mu.Unlock()
	select {
	case <-release:
	case <-r.Context().Done():
	}
	g.mu.Lock()
	g.waiting--
	g.mu.Unlock()
	return r.Context().Err() == nil // abandoned: the request never reaches vCenter
}

// hangRoutes: POST /hang {"hung": true|false}, GET /hang (README.md, admin API).
func (srv *Server) hangRoutes(mux *http.ServeMux) {
	state := func() map[string]any {
		hung, waiting, held := srv.HangState()
		return map[string]any{"hung": hung, "waiting": waiting, "held": held}
	}
	mux.HandleFunc("GET /hang", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, state())
	})
	mux.HandleFunc("POST /hang", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Hung *bool `json:"hung"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Hung == nil {
			http.Error(w, `{"error":"want {\"hung\": true|false}"}`, http.StatusBadRequest)
			return
		}
		srv.SetHang(*req.Hung)
		writeJSON(w, state())
	})
}
