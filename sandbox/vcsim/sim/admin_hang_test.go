package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/vmware/govmomi/vim25/methods"
	"github.com/vmware/govmomi/vim25/types"
)

type hangState struct {
	Hung    bool
	Waiting int
	Held    int
}

func TestHangHoldsCallsUntilLiftedAndDropsAbandonedOnes(t *testing.T) {
	s, srv := serveTest(t)
	c, err := login(t, srv, "admin", "secret")
	if err != nil {
		t.Fatal(err)
	}
	admin(t, srv, "POST", "/hang", map[string]bool{"hung": true}, nil)
	t.Cleanup(func() { srv.SetHang(false) })
	s.Counters.Reset()

	// A client with a deadline gives up; its request was read but never answered.
	short, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	req := &types.UpdatePassthruConfig{This: *s.Host("esx-gpu-03.lab.local").ConfigManager.PciPassthruSystem,
		Config: []types.BaseHostPciPassthruConfig{&types.HostPciPassthruConfig{Id: "0000:3b:00.0", PassthruEnabled: true}}}
	if _, err := methods.UpdatePassthruConfig(short, c, req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("want the client's deadline, got %v", err)
	}

	// A patient client waits through the hang and is answered once it is lifted.
	done := make(chan error, 1)
	go func() { done <- currentTime(c) }()
	var st hangState
	deadline := time.Now().Add(5 * time.Second)
	for (st.Held < 2 || st.Waiting != 1) && time.Now().Before(deadline) { // the abandoned one leaves
		time.Sleep(10 * time.Millisecond)
		admin(t, srv, "GET", "/hang", nil, &st)
	}
	if !st.Hung || st.Waiting != 1 || st.Held != 2 {
		t.Fatalf("while hung: %+v, want hung, 1 waiting, 2 held", st)
	}
	select {
	case err := <-done:
		t.Fatalf("answered while hung: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	admin(t, srv, "POST", "/hang", map[string]bool{"hung": false}, &st)
	if st.Hung {
		t.Fatalf("after lifting: %+v", st)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the waiting call failed: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting call was not answered after the hang was lifted")
	}
	if err := currentTime(c); err != nil {
		t.Fatalf("after the hang: %v", err)
	}
	counts, _ := s.Counters.Snapshot()
	if n := counts["UpdatePassthruConfig"]; n != 0 {
		t.Errorf("the abandoned UpdatePassthruConfig ran %d time(s) after the hang", n)
	}
	if n := counts["CurrentTime"]; n != 2 {
		t.Errorf("CurrentTime ran %d times, want 2", n)
	}
}

func TestHangRefusesABodyWithoutHung(t *testing.T) {
	_, srv := serveTest(t)
	res := adminStatus(t, srv, "POST", "/hang", map[string]any{"down": true})
	if res != 400 {
		t.Errorf("status %d, want 400", res)
	}
}

func adminStatus(t *testing.T, srv *Server, method, path string, body any) int {
	t.Helper()
	raw, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, srv.AdminURL+path, bytes.NewReader(raw))
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}
