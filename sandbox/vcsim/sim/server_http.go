package sim

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vmware/govmomi/vim25/types"
)

// ServeOptions configure the network side of a Simulator.
type ServeOptions struct {
	Listen      string // SDK address, e.g. 127.0.0.1:0
	AdminListen string // admin HTTP address
	TLSCert     string // PEM files; when empty a self-signed pair is written to StateDir
	TLSKey      string
	StateDir    string
	Username    string // the only credentials Login accepts
	Password    string
}

// Server serves the SDK over HTTPS on a listener it owns, so that an outage can close it and
// reopen it on the same port, and the admin API over plain HTTP on loopback.
type Server struct {
	sim      *Simulator
	handler  http.Handler
	addr     string
	tls      *tlsPair
	latency  atomic.Int64 // milliseconds added to every SOAP request
	hang     hangGate     // admin POST /hang (admin_hang.go)
	mu       sync.Mutex
	sdk      *http.Server // nil while down
	admin    *http.Server
	SDKURL   string
	AdminURL string
}

// Serve starts the SDK and admin listeners.
func (s *Simulator) Serve(opts ServeOptions) (*Server, error) {
	pair, err := loadOrCreateTLS(opts.TLSCert, opts.TLSKey, opts.StateDir)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", orDefault(opts.Listen, "127.0.0.1:0"))
	if err != nil {
		return nil, fmt.Errorf("sdk listen: %w", err)
	}
	addr := ln.Addr().String()

	// NewServer registers the SDK handlers on Service.ServeMux and starts its own listener,
	// which we close at once and replace with ours: the simulator's listener can't be reopened.
	svc := s.Service
	svc.Listen = &url.URL{Host: "127.0.0.1:0"}
	if opts.Username != "" {
		svc.Listen.User = url.UserPassword(opts.Username, opts.Password)
	}
	svc.TLS = pair.config()
	inner := svc.NewServer()
	inner.Close()
	svc.Listen.Host = addr
	sm := s.Map.SessionManager()
	sm.ServiceHostName = addr
	sm.TLS = pair.config
	s.Map.OptionManager().UpdateOptions(&types.UpdateOptions{ChangedValue: []types.BaseOptionValue{
		&types.OptionValue{Key: "vcsim.server.url", Value: "https://" + addr + "/sdk"},
	}})

	srv := &Server{sim: s, addr: addr, tls: pair, SDKURL: "https://" + addr + "/sdk"}
	srv.handler = srv.withHang(srv.withLatency(svc.ServeMux))
	srv.startSDK(ln)

	aln, err := net.Listen("tcp", orDefault(opts.AdminListen, "127.0.0.1:0"))
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	srv.AdminURL = "http://" + aln.Addr().String()
	srv.admin = &http.Server{Handler: srv.adminMux(), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.admin.Serve(aln) }()
	return srv, nil
}

func (srv *Server) startSDK(ln net.Listener) {
	sdk := &http.Server{Handler: srv.handler, TLSConfig: srv.tls.config(), ReadHeaderTimeout: 30 * time.Second}
	srv.mu.Lock()
	srv.sdk = sdk
	srv.mu.Unlock()
	go func() { _ = sdk.ServeTLS(ln, "", "") }()
}

// withLatency delays every SOAP request by the configured latency, like a slow network.
func (srv *Server) withLatency(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ms := srv.latency.Load(); ms > 0 && r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/sdk") {
			time.Sleep(time.Duration(ms) * time.Millisecond)
		}
		next.ServeHTTP(w, r)
	})
}

// SetLatency sets the delay added to each SOAP request.
func (srv *Server) SetLatency(d time.Duration) { srv.latency.Store(d.Milliseconds()) }

// Latency returns the delay added to each SOAP request.
func (srv *Server) Latency() time.Duration {
	return time.Duration(srv.latency.Load()) * time.Millisecond
}

// SetOutage simulates vCenter going down (the SDK port refuses connections and open
// connections are cut) and coming back on the same port.
func (srv *Server) SetOutage(down bool) error {
	srv.mu.Lock()
	sdk := srv.sdk
	srv.mu.Unlock()
	if down {
		if sdk != nil {
			srv.mu.Lock()
			srv.sdk = nil
			srv.mu.Unlock()
			return sdk.Close()
		}
		return nil
	}
	if sdk != nil {
		return nil
	}
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ { // the port may linger briefly after Close
		if ln, err = net.Listen("tcp", srv.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("reopen %s: %w", srv.addr, err)
	}
	srv.startSDK(ln)
	return nil
}

// Down reports whether the SDK is in a simulated outage.
func (srv *Server) Down() bool {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.sdk == nil
}

// Close stops both listeners.
func (srv *Server) Close() {
	srv.mu.Lock()
	sdk := srv.sdk
	srv.sdk = nil
	srv.mu.Unlock()
	if sdk != nil {
		_ = sdk.Close()
	}
	if srv.admin != nil {
		_ = srv.admin.Close()
	}
}

// CAFile is the PEM certificate clients should trust (the self-signed one when generated).
func (srv *Server) CAFile() string { return srv.tls.certFile }
