package fleet

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"
)

// TestAnswersPublished: the sequencing stage learns every report and answer
// of listeners, routes and filter configs, also the ACK of a re-send of a
// config the node rejected (which Acked does not count as a load), and
// nothing of clusters or of answers to unknown nonces.
func TestAnswersPublished(t *testing.T) {
	lds, rds, cds := resource.ListenerType, resource.RouteType, resource.ClusterType
	ask := func(s Stream, typ string, q Request) step {
		return func(r Registry) { q.TypeURL = typ; r.Requested(s, n1, q) }
	}
	send := func(s Stream, typ, v, nonce string) step { return func(r Registry) { r.Sent(s, typ, v, nonce) } }
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{name: "a fresh node reports nothing, then acks",
			steps: []step{open(sotw), ask(sotw, cds, Request{}), ask(sotw, lds, Request{}),
				send(sotw, lds, "l1", "1"), ask(sotw, lds, Request{Version: "l1", Nonce: "1"})},
			want: []string{"report LDS \"\"", "ack LDS l1"}},
		{name: "a reconnecting node reports what it runs",
			steps: []step{open(sotw), ask(sotw, lds, Request{Version: "l1"}), ask(sotw, rds, Request{Version: "r1"}), ask(sotw, ecds, Request{Version: "e1"})},
			want:  []string{"report LDS l1", "report RDS r1", "report ECDS e1"}},
		{name: "a nack names the version rejected, and the re-send's ack is published",
			steps: []step{open(sotw), ask(sotw, ecds, Request{}),
				send(sotw, ecds, "e2", "1"), ask(sotw, ecds, Request{Version: "", Nonce: "1", NACK: true, Reason: "bad"}),
				send(sotw, ecds, "e2", "2"), ask(sotw, ecds, Request{Version: "e2", Nonce: "2"})},
			want: []string{"report ECDS \"\"", "nack ECDS e2", "ack ECDS e2"}},
		{name: "an unknown nonce is no answer",
			steps: []step{open(sotw), ask(sotw, rds, Request{}), ask(sotw, rds, Request{Version: "r9", Nonce: "9"})},
			want:  []string{"report RDS \"\""}},
		{name: "delta reports carry no version",
			steps: []step{open(delta), ask(delta, lds, Request{})},
			want:  []string{"report LDS \"\""}},
		{name: "a reconnecting delta node reports its resources, once per stream",
			steps: []step{open(delta), ask(delta, rds, Request{Resources: map[string]string{"r": "h~0:auth"}}),
				ask(delta, rds, Request{}), send(delta, rds, "r2", "1"), ask(delta, rds, Request{Nonce: "1"})},
			want: []string{"report RDS \"\" map[r:h~0:auth]", "ack RDS r2"}},
	}
	short := map[string]string{lds: "LDS", rds: "RDS", ecds: "ECDS"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := New(Config{Now: func() time.Time { return epoch }})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			events := r.Subscribe(ctx)
			for _, s := range tt.steps {
				s(r)
			}
			r.StreamOpened(Stream{ID: 99})
			r.Requested(Stream{ID: 99}, Identity{ID: "sentinel"}, Request{TypeURL: cds})
			var got []string
			for e := range events {
				if e.Node == "sentinel" {
					break
				}
				if e.Kind != Answered {
					continue
				}
				what := "ack"
				switch {
				case e.Report:
					what = "report"
				case e.NACK:
					what = "nack"
				}
				v := e.Version
				if v == "" {
					v = `""`
				}
				line := fmt.Sprintf("%s %s %s", what, short[e.TypeURL], v)
				if e.Resources != nil {
					line += fmt.Sprintf(" %v", e.Resources)
				}
				got = append(got, line)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("answers:\n got  %q\n want %q", got, tt.want)
			}
		})
	}
}
