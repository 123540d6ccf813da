package xdscheck

import (
	"errors"
	"slices"
	"strings"
	"testing"

	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	discovery "github.com/envoyproxy/go-control-plane/envoy/service/discovery/v3"
)

func response(ev Event) *discovery.DiscoveryResponse {
	return &discovery.DiscoveryResponse{TypeUrl: ev.TypeURL, VersionInfo: ev.Version, Nonce: ev.Nonce, Resources: ev.Resources}
}

// handle feeds ev to r and fails the test unless the answer is an ACK
// (wantErr nil) or a NACK wrapping wantErr.
func handle(t *testing.T, r *Recorder, ev Event, wantErr error) {
	t.Helper()
	err := r.Handle(response(ev))
	if (wantErr == nil) != (err == nil) || (wantErr != nil && !errors.Is(err, wantErr)) {
		t.Fatalf("Handle(%s %s) = %v, want %v", ev.TypeURL, ev.Version, err, wantErr)
	}
}

func TestRecorderNamesWhatListenersReference(t *testing.T) {
	r := NewRecorder(nil)
	if n := r.Names(RouteType); len(n) != 0 {
		t.Fatalf("Names before LDS = %v", n)
	}
	handle(t, r, resp(t, "l1", listener(2)), nil)
	if got, want := r.Names(RouteType), []string{rds}; !slices.Equal(got, want) {
		t.Errorf("RDS names = %v, want %v", got, want)
	}
	want := []string{slot(0), canary(0), slot(1), canary(1)}
	slices.Sort(want)
	if got := r.Names(ExtensionType); !slices.Equal(got, want) {
		t.Errorf("ECDS names = %v, want %v", got, want)
	}
}

// TestRecorderAppliesECDSLikeEnvoy: in response order, stopping at the
// first failure; the identical re-send is ACKed without loading and the rest
// applies; the recording replays to the same result.
func TestRecorderAppliesECDSLikeEnvoy(t *testing.T) {
	r := NewRecorder(FailCode(digest("a2")))
	handle(t, r, resp(t, "l1", listener(3)), nil)
	handle(t, r, resp(t, "r1", routes(route("r", slot(0), slot(1), slot(2)))), nil)
	handle(t, r, ecds(t, "e1", 3, wasm(slot(0), "auth", "a1"), wasm(slot(1), "logging", "l1"), wasm(slot(2), "transform", "t1")), nil)

	reorder := ecds(t, "e2", 3, wasm(slot(0), "transform", "t1"), wasm(slot(1), "auth", "a2"), wasm(slot(2), "logging", "l1"))
	handle(t, r, reorder, ErrLoad)
	evs := r.Events()
	if last := evs[len(evs)-1]; last.Rejected != slot(1) || !strings.Contains(last.NACK, "auth") {
		t.Errorf("NACK recorded as %q at %q, want the auth module at %s", last.NACK, last.Rejected, slot(1))
	}
	plugins := func() []string {
		v := r.View()
		var out []string
		for _, s := range []string{slot(0), slot(1), slot(2)} {
			out = append(out, v.Slots[s].Running.Plugin)
		}
		return out
	}
	if got, want := plugins(), []string{"transform", "logging", "transform"}; !slices.Equal(got, want) {
		t.Errorf("after the NACK the slots run %v, want %v (stopped at %s)", got, want, slot(1))
	}
	if rej := r.View().Slots[slot(1)].Rejected; rej == nil || rej.Code != digest("a2") {
		t.Errorf("%s rejected = %v, want the a2 module", slot(1), rej)
	}

	handle(t, r, reorder, nil)
	if got, want := plugins(), []string{"transform", "logging", "logging"}; !slices.Equal(got, want) {
		t.Errorf("after the re-send the slots run %v, want %v", got, want)
	}
	if got, want := r.View().Routes[lis+"/r"], []string{slot(0), slot(1), slot(2)}; !slices.Equal(got, want) {
		t.Errorf("route r runs %v, want %v", got, want)
	}

	vs, err := Check(r.Events(), Options{})
	if err != nil {
		t.Fatalf("Check of the recorder's own recording: %v", err)
	}
	var kinds []Kind
	for _, v := range vs {
		kinds = append(kinds, v.Kind)
	}
	if !slices.Equal(kinds, []Kind{Duplicate, Duplicate}) {
		t.Errorf("violations %v, want two duplicates", vs)
	}
}

func TestRecorderNACKs(t *testing.T) {
	tests := []struct {
		name    string
		fails   Fails
		ev      func(t *testing.T) Event
		wantErr error
	}{
		{name: "a plugin the node cannot load", fails: FailPlugin("logging"),
			ev: func(t *testing.T) Event { return ecds(t, "e2", 1, wasm(slot(0), "logging", "l1")) }, wantErr: ErrLoad},
		{name: "another plugin loads", fails: FailPlugin("logging"),
			ev: func(t *testing.T) Event { return ecds(t, "e2", 1, wasm(slot(0), "auth", "a2")) }},
		{name: "a module the node cannot load", fails: FailCode(digest("a2")),
			ev: func(t *testing.T) Event { return ecds(t, "e2", 1, wasm(canary(0), "auth", "a2")) }, wantErr: ErrLoad},
		{name: "an invalid route configuration", ev: func(t *testing.T) Event {
			return resp(t, "r2", routes(&routepb.Route{Name: "no match"}))
		}, wantErr: errors.New("")},
		{name: "an ECDS response holding another type", ev: func(t *testing.T) Event {
			ev := resp(t, "e2", routes())
			ev.TypeURL = ExtensionType
			return ev
		}, wantErr: errors.New("")},
		{name: "a type it does not know", ev: func(t *testing.T) Event { return resp(t, "x", &routepb.FilterConfig{}) }, wantErr: ErrUnsupported},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewRecorder(tt.fails)
			handle(t, r, resp(t, "l1", listener(1)), nil)
			handle(t, r, resp(t, "r1", routes(route("r", slot(0)))), nil)
			handle(t, r, ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")), nil)
			before := r.View()
			err := r.Handle(response(tt.ev(t)))
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Handle = %v, want an ACK", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("Handle ACKed, want a NACK")
			case tt.wantErr != nil && tt.wantErr.Error() != "" && !errors.Is(err, tt.wantErr):
				t.Fatalf("Handle = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !slices.Equal(before.Routes[lis+"/r"], r.View().Routes[lis+"/r"]) {
				t.Errorf("a NACKed response changed the routes")
			}
			if _, err := Check(r.Events(), Options{}); err != nil {
				t.Errorf("Check of the recorder's own recording: %v", err)
			}
		})
	}
}

func TestRecorderMarks(t *testing.T) {
	r := NewRecorder(nil)
	r.Mark("one")
	handle(t, r, resp(t, "l1", listener(1)), nil)
	r.Mark("two")
	evs := r.Events()
	if len(evs) != 3 || evs[0].Mark != "one" || evs[1].TypeURL != ListenerType || evs[2].Mark != "two" {
		t.Errorf("events = %+v", evs)
	}
}

func TestEventString(t *testing.T) {
	tests := []struct {
		name string
		ev   Event
		want string
	}{
		{name: "mark", ev: mark("split"), want: `mark "split"`},
		{name: "ack", ev: resp(t, "r1", routes()), want: "RDS version r1 (1 resources): ACK"},
		{name: "ecds nack", ev: nack(ecds(t, "e1", 1), canary(0)), want: "ECDS version e1 (2 resources): NACK at wasmfleet.slot.0.canary: wasmfleet.slot.0.canary: " + ErrLoad.Error()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ev.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}
