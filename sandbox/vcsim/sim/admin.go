package sim

import (
	"encoding/json"
	"net/http"
	"net/http/pprof"
	"time"
)

// adminMux is the admin API (plain HTTP on loopback, JSON in and out); see README.md.
func (srv *Server) adminMux() *http.ServeMux {
	mux := http.NewServeMux()
	// The simulator's own profile, for the benchmarks (docs/benchmarks.md, finding 25):
	// go tool pprof -top http://<admin>/debug/pprof/profile?seconds=60
	mux.HandleFunc("GET /debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"ok": true, "sdkDown": srv.Down()})
	})
	mux.HandleFunc("GET /counters", func(w http.ResponseWriter, _ *http.Request) {
		counts, total := srv.sim.Counters.Snapshot()
		writeJSON(w, map[string]any{"counts": counts, "total": total})
	})
	mux.HandleFunc("POST /counters/reset", func(w http.ResponseWriter, _ *http.Request) {
		srv.sim.Counters.Reset()
		writeJSON(w, map[string]any{"ok": true})
	})
	mux.HandleFunc("GET /latency", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"ms": srv.Latency().Milliseconds()})
	})
	mux.HandleFunc("PUT /latency", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			MS *int64 `json:"ms"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.MS == nil || *req.MS < 0 {
			http.Error(w, `{"error":"want {\"ms\": <non-negative int>}"}`, http.StatusBadRequest)
			return
		}
		srv.SetLatency(time.Duration(*req.MS) * time.Millisecond)
		writeJSON(w, map[string]any{"ms": *req.MS})
	})
	mux.HandleFunc("POST /outage", func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Down *bool `json:"down"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Down == nil {
			http.Error(w, `{"error":"want {\"down\": true|false}"}`, http.StatusBadRequest)
			return
		}
		if err := srv.SetOutage(*req.Down); err != nil {
			http.Error(w, `{"error":"`+err.Error()+`"}`, http.StatusInternalServerError)
			return
		}
		writeJSON(w, map[string]any{"down": *req.Down})
	})
	mux.HandleFunc("POST /sessions/expire", func(w http.ResponseWriter, _ *http.Request) {
		srv.sim.ExpireSessions()
		writeJSON(w, map[string]any{"ok": true})
	})
	mux.HandleFunc("POST /reboots/complete", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"completed": srv.sim.CompleteReboots()})
	})
	srv.faultRoutes(mux)
	srv.hangRoutes(mux)
	srv.holdRoutes(mux)
	return mux
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
