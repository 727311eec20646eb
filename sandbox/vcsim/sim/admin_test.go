package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

func serveTest(t *testing.T) (*Simulator, *Server) {
	t.Helper()
	s := newTestSim(t)
	srv, err := s.Serve(ServeOptions{StateDir: t.TempDir(), Username: "admin", Password: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return s, srv
}

func login(t *testing.T, srv *Server, user, pass string) (*vim25.Client, error) {
	t.Helper()
	u, _ := url.Parse(srv.SDKURL)
	sc := soap.NewClient(u, false)
	if err := sc.SetRootCAs(srv.CAFile()); err != nil {
		t.Fatal(err)
	}
	c, err := vim25.NewClient(context.Background(), sc)
	if err != nil {
		return nil, err
	}
	return c, session.NewManager(c).Login(context.Background(), url.UserPassword(user, pass))
}

func admin(t *testing.T, srv *Server, method, path string, body any, out any) {
	t.Helper()
	var buf bytes.Buffer
	if body != nil {
		_ = json.NewEncoder(&buf).Encode(body)
	}
	req, _ := http.NewRequest(method, srv.AdminURL+path, &buf)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %s", method, path, res.Status)
	}
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatal(err)
		}
	}
}

func currentTime(c *vim25.Client) error {
	_, err := methods.GetCurrentTime(context.Background(), c)
	return err
}

func TestCredentialsAndCounters(t *testing.T) {
	s, srv := serveTest(t)
	if _, err := login(t, srv, "admin", "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	admin(t, srv, "POST", "/counters/reset", nil, nil)
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	if err := updatePassthru(t, c, s, "esx-gpu-03.lab.local", types.HostPciPassthruConfig{Id: "0000:3b:00.0", PassthruEnabled: true}); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Counts map[string]int64 `json:"counts"`
		Total  int64            `json:"total"`
	}
	admin(t, srv, "GET", "/counters", nil, &got)
	if got.Counts["Login"] != 1 || got.Counts["UpdatePassthruConfig"] != 1 || got.Total < 2 {
		t.Errorf("counters = %+v", got)
	}
}

func TestLatency(t *testing.T) {
	_, srv := serveTest(t)
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	admin(t, srv, "PUT", "/latency", map[string]int{"ms": 100}, nil)
	start := time.Now()
	if err := currentTime(c); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("call took %s with 100ms latency", d)
	}
}

func TestOutage(t *testing.T) {
	_, srv := serveTest(t)
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	admin(t, srv, "POST", "/outage", map[string]bool{"down": true}, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := methods.GetCurrentTime(ctx, c); err == nil {
		t.Fatal("call succeeded during outage")
	}
	admin(t, srv, "POST", "/outage", map[string]bool{"down": false}, nil)
	// Same port, and the session survives an outage of the listener.
	if err := currentTime(c); err != nil {
		t.Fatalf("after outage: %v", err)
	}
}

func TestSessionExpiry(t *testing.T) {
	_, srv := serveTest(t)
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	admin(t, srv, "POST", "/sessions/expire", nil, nil)
	err = currentTime(c)
	if err == nil || !soap.IsSoapFault(err) {
		t.Fatalf("want NotAuthenticated, got %v", err)
	}
	if _, ok := soap.ToSoapFault(err).VimFault().(types.NotAuthenticated); !ok {
		t.Fatalf("want NotAuthenticated, got %T", soap.ToSoapFault(err).VimFault())
	}
	// Logging in again on the same connection works.
	if err := session.NewManager(c).Login(context.Background(), url.UserPassword("admin", "secret")); err != nil {
		t.Fatalf("re-login: %v", err)
	}
	if err := currentTime(c); err != nil {
		t.Fatal(err)
	}
}

func TestAdminRebootsComplete(t *testing.T) {
	s, srv := serveTest(t)
	s.opts.RebootDelay = time.Hour
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	task, err := rebootHost(c, hostObj(c, s, "esx-gpu-03.lab.local"), true)
	if err != nil {
		t.Fatal(err)
	}
	if err := task.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	var got struct{ Completed int }
	admin(t, srv, "POST", "/reboots/complete", nil, &got)
	if got.Completed != 1 || s.PendingReboots() != 0 {
		t.Errorf("completed = %d, pending = %d", got.Completed, s.PendingReboots())
	}
}

// The benchmarks read the simulator's own CPU profile from the admin port (finding 25).
func TestAdminServesPprof(t *testing.T) {
	_, srv := serveTest(t)
	resp, err := http.Get(srv.AdminURL + "/debug/pprof/profile?seconds=1")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	if _, err := body.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || body.Len() == 0 {
		t.Fatalf("pprof profile: status %d, %d bytes", resp.StatusCode, body.Len())
	}
	if status := adminStatus(t, srv, "GET", "/debug/pprof/", nil); status != http.StatusOK {
		t.Fatalf("pprof index: status %d", status)
	}
}
