package xdscheck

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	routepb "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
)

// brief is a violation as the tables below write it:
// "route kind slot @event-cleared", with " [phase]" when there is one.
func brief(v Violation) string {
	s := fmt.Sprintf("%s %s %s @%d-%d", v.Route, v.Kind, v.Slot, v.Event, v.Cleared)
	if v.Phase != "" {
		s += " [" + v.Phase + "]"
	}
	return s
}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		events func(t *testing.T) []Event
		opts   Options
		want   []string
	}{
		{
			name: "a split made before break passes",
			events: func(t *testing.T) []Event {
				return []Event{
					resp(t, "l1", listener(1)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")),
					ecds(t, "e2", 1, wasm(slot(0), "auth", "a1"), wasm(canary(0), "auth", "a2")),
					resp(t, "r2", routes(split("c", 3000, canary(0)), route("r", slot(0)))),
					resp(t, "r3", routes(route("r", slot(0)))),
					ecds(t, "e3", 1, wasm(slot(0), "auth", "a2")),
				}
			},
		},
		{
			name: "RDS enables a canary slot before the ECDS that fills it",
			events: func(t *testing.T) []Event {
				return []Event{
					resp(t, "l1", listener(1)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")),
					resp(t, "r2", routes(split("c", 3000, canary(0)), route("r", slot(0)))),
					ecds(t, "e2", 1, wasm(slot(0), "auth", "a1"), wasm(canary(0), "auth", "a2")),
				}
			},
			want: []string{"c no-op wasmfleet.slot.0.canary @3-4"},
		},
		{
			name: "routes before the first ECDS: the listener is still warming",
			events: func(t *testing.T) []Event {
				return []Event{
					resp(t, "l1", listener(1)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")),
				}
			},
		},
		{
			name: "a rejected first config warms the listener without it",
			events: func(t *testing.T) []Event {
				return []Event{
					resp(t, "l1", listener(1)),
					resp(t, "r1", routes(route("r", slot(0)))),
					nack(ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")), slot(0)),
				}
			},
			want: []string{"r empty wasmfleet.slot.0 @2--1"},
		},
		{
			name: "RDS enables a canary whose ECDS was NACKed, after the identical re-send was ACKed",
			events: func(t *testing.T) []Event {
				e2 := ecds(t, "e2", 1, wasm(slot(0), "auth", "a1"), wasm(canary(0), "auth", "a2"))
				return []Event{
					resp(t, "l1", listener(1)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")),
					nack(e2, canary(0)),
					e2, // go-control-plane re-sends; Envoy skips the identical config and ACKs
					resp(t, "r2", routes(split("c", 3000, canary(0)), route("r", slot(0)))),
				}
			},
			want: []string{"c no-op wasmfleet.slot.0.canary @5--1"},
		},
		{
			name: "a canary whose new candidate was NACKed runs the one before",
			events: func(t *testing.T) []Event {
				return []Event{
					resp(t, "l1", listener(1)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e1", 1, wasm(slot(0), "auth", "a1"), wasm(canary(0), "auth", "a2")),
					resp(t, "r2", routes(split("c", 3000, canary(0)), route("r", slot(0)))),
					nack(ecds(t, "e2", 1, wasm(slot(0), "auth", "a1"), wasm(canary(0), "auth", "a3")), canary(0)),
				}
			},
			want: []string{"c stale wasmfleet.slot.0.canary @4--1"},
		},
		{
			name: "a canary runs a config the node NACKed in another slot",
			events: func(t *testing.T) []Event {
				return []Event{
					resp(t, "l1", listener(1)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")),
					nack(ecds(t, "e2", 1, wasm(slot(0), "auth", "a2")), slot(0)),
					ecds(t, "e3", 1, wasm(slot(0), "auth", "a1"), wasm(canary(0), "auth", "a2")),
					resp(t, "r2", routes(split("c", 3000, canary(0)), route("r", slot(0)))),
				}
			},
			want: []string{"c nacked wasmfleet.slot.0.canary @5--1"},
		},
		{
			name: "a reorder stopped at its first failure runs a filter twice, and so does the re-send",
			events: func(t *testing.T) []Event {
				e2 := ecds(t, "e2", 3, wasm(slot(0), "transform", "t1"), wasm(slot(1), "auth", "a2"), wasm(slot(2), "logging", "l1"))
				return []Event{
					resp(t, "l1", listener(3)),
					resp(t, "r1", routes(route("r", slot(0), slot(1), slot(2)))),
					ecds(t, "e1", 3, wasm(slot(0), "auth", "a1"), wasm(slot(1), "logging", "l1"), wasm(slot(2), "transform", "t1")),
					nack(e2, slot(1)), // slot.0 applied, slot.2 not reached
					e2,                // slot.1 skipped as identical, slot.2 applied
				}
			},
			want: []string{
				"r duplicate wasmfleet.slot.0,wasmfleet.slot.2 @3-4",
				"r duplicate wasmfleet.slot.1,wasmfleet.slot.2 @4--1",
			},
		},
		{
			name: "RDS before ECDS when the first filter is removed skips the second",
			events: func(t *testing.T) []Event {
				return []Event{
					resp(t, "l1", listener(2)),
					resp(t, "r1", routes(route("r", slot(0), slot(1)))),
					ecds(t, "e1", 2, wasm(slot(0), "transform", "t1"), wasm(slot(1), "auth", "a1")),
					resp(t, "r2", routes(route("r", slot(0)))),
					ecds(t, "e2", 2, wasm(slot(0), "auth", "a1")),
				}
			},
			opts: Options{Orders: [][]string{{"transform", "auth"}, {"auth"}}},
			want: []string{"r order  @3-4"},
		},
		{
			name: "ECDS before RDS when a filter is inserted in front skips the one behind",
			events: func(t *testing.T) []Event {
				return []Event{
					resp(t, "l1", listener(2)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e1", 2, wasm(slot(0), "auth", "a1")),
					ecds(t, "e2", 2, wasm(slot(0), "transform", "t1"), wasm(slot(1), "auth", "a1")),
					resp(t, "r2", routes(route("r", slot(0), slot(1)))),
				}
			},
			opts: Options{Orders: [][]string{{"auth"}, {"transform", "auth"}}},
			want: []string{"r order  @3-4"},
		},
		{
			name: "a route enables a slot the listener lacks",
			events: func(t *testing.T) []Event {
				return []Event{
					resp(t, "l1", listener(1)),
					resp(t, "r1", routes(route("r", slot(0), slot(1)))),
					ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")),
				}
			},
			want: []string{"r missing wasmfleet.slot.1 @2--1"},
		},
		{
			name: "phase orders replace the default orders until the next mark",
			events: func(t *testing.T) []Event {
				r2 := resp(t, "r2", routes(route("r", slot(0), slot(1))))
				return []Event{
					resp(t, "l1", listener(2)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e1", 2, wasm(slot(0), "auth", "a1")),
					mark("grow"),
					ecds(t, "e2", 2, wasm(slot(0), "auth", "a1"), wasm(slot(1), "logging", "l1")),
					r2,
					mark("after"),
					r2,
				}
			},
			opts: Options{Orders: [][]string{{"auth"}}, PhaseOrders: map[string][][]string{"grow": {{"auth"}, {"auth", "logging"}}}},
			want: []string{"r order  @7--1 [after]"},
		},
		{
			name: "an updated listener warms beside the one serving",
			events: func(t *testing.T) []Event {
				return []Event{
					resp(t, "l1", listener(1)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")),
					resp(t, "l2", listener(2)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e2", 2, wasm(slot(0), "auth", "a1"), wasm(slot(1), "logging", "l1")),
					resp(t, "r2", routes(route("r", slot(0), slot(1)))),
				}
			},
		},
		{
			name: "a rejected RDS response applies nothing",
			events: func(t *testing.T) []Event {
				bad := routes(route("c", canary(0)), &routepb.Route{Name: "no action"})
				ev := resp(t, "r2", bad)
				ev.NACK = "invalid"
				return []Event{
					resp(t, "l1", listener(1)),
					resp(t, "r1", routes(route("r", slot(0)))),
					ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")),
					ev,
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs, err := Check(tt.events(t), tt.opts)
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			var got []string
			for _, v := range vs {
				got = append(got, brief(v))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("violations:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
				for _, v := range vs {
					t.Log(v)
				}
			}
		})
	}
}

// TestCheckReportsWhatTheSlotHeld checks the fields a reader of a failure
// needs: where, what the slot held, and which config was rejected.
func TestCheckReportsWhatTheSlotHeld(t *testing.T) {
	e2 := ecds(t, "e2", 1, wasm(slot(0), "auth", "a1"), wasm(canary(0), "auth", "a2"))
	vs, err := Check([]Event{
		resp(t, "l1", listener(1)),
		resp(t, "r1", routes(route("r", slot(0)))),
		ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")),
		mark("split"),
		nack(e2, canary(0)),
		resp(t, "r2", routes(split("c", 3000, canary(0)), route("r", slot(0)))),
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("violations %v, want one", vs)
	}
	v := vs[0]
	want := Violation{
		Event: 5, Cleared: -1, Phase: "split", Listener: lis, RouteConfig: rds, Route: "c",
		Slot: canary(0), Kind: Noop,
		Held: "no-op envoy.extensions.filters.http.header_mutation.v3.HeaderMutation (the last config received, wasm auth@" + digest("a2")[:12] + ", was rejected)",
	}
	if v != want {
		t.Errorf("violation\n  %+v\nwant\n  %+v", v, want)
	}
	if s := v.String(); !strings.Contains(s, "event 5") || !strings.Contains(s, canary(0)) || !strings.Contains(s, "to the end") {
		t.Errorf("String() = %q", s)
	}
}

// TestCheckRefusesInconsistentRecordings: a recording whose answers cannot
// come from Envoy is an error, not a pass.
func TestCheckRefusesInconsistentRecordings(t *testing.T) {
	start := func(t *testing.T) []Event {
		return []Event{
			resp(t, "l1", listener(1)),
			resp(t, "r1", routes(route("r", slot(0)))),
			ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")),
		}
	}
	tests := []struct {
		name string
		last func(t *testing.T) Event
	}{
		{name: "an ECDS NACK that names no resource", last: func(t *testing.T) Event {
			ev := ecds(t, "e2", 1, wasm(slot(0), "auth", "a2"))
			ev.NACK = "failed"
			return ev
		}},
		{name: "a NACK of a config identical to the last received", last: func(t *testing.T) Event {
			return nack(ecds(t, "e1", 1, wasm(slot(0), "auth", "a1")), slot(0))
		}},
		{name: "a NACK of a no-op", last: func(t *testing.T) Event {
			return nack(ecds(t, "e2", 1, wasm(slot(0), "auth", "a1")), canary(0))
		}},
		{name: "a NACK naming a resource after the one that fails", last: func(t *testing.T) Event {
			bad := wasm(slot(0), "auth", "a2")
			bad.Name = "" // fails validation
			return nack(resp(t, "e2", bad, wasm(canary(0), "auth", "a2")), canary(0))
		}},
		{name: "an ACK of an invalid route configuration", last: func(t *testing.T) Event {
			return resp(t, "r2", routes(&routepb.Route{Name: "no match, no action"}))
		}},
		{name: "an unknown type ACKed", last: func(t *testing.T) Event {
			return resp(t, "x", &routepb.FilterConfig{})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events := append(start(t), tt.last(t))
			_, err := Check(events, Options{})
			if !errors.Is(err, ErrInconsistent) || !strings.Contains(err.Error(), "event 3") {
				t.Errorf("Check = %v, want %v at event 3", err, ErrInconsistent)
			}
		})
	}
}
