package standin

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// recorder is a scripted filter: it logs each callback and returns what its
// fields say. It stands in for a filter so the iteration order itself can be
// checked; real modules run through the chain in standin_test.go.
type recorder struct {
	name                  string
	log                   *[]string
	stopHeaders, stopBody bool
	replyOnHeaders        bool
	reply                 *localReply
}

func (r *recorder) call(what string, stop bool) (action, error) {
	*r.log = append(*r.log, r.name+"."+what)
	if stop {
		return actStop, nil
	}
	return actContinue, nil
}

func (r *recorder) requestHeaders(context.Context, *headerMap, bool) (action, error) {
	if r.replyOnHeaders {
		r.reply = &localReply{status: 403}
	}
	return r.call("h", r.stopHeaders || r.replyOnHeaders)
}
func (r *recorder) requestBody(context.Context, *[]byte, bool) (action, error) {
	return r.call("b", r.stopBody)
}
func (r *recorder) responseHeaders(context.Context, *headerMap, bool) (action, error) {
	return r.call("H", r.stopHeaders)
}
func (r *recorder) responseBody(context.Context, *[]byte, bool) (action, error) {
	return r.call("B", r.stopBody)
}
func (r *recorder) local() *localReply { return r.reply }
func (r *recorder) done()              {}

func TestPhaseRunOrder(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		filters   []recorder
		want      []string
		wantReply bool
		wantErr   error
	}{
		{name: "headers then body, each down the chain", body: "x",
			filters: []recorder{{name: "a"}, {name: "b"}}, want: []string{"a.h", "b.h", "a.b", "b.b"}},
		{name: "no body", filters: []recorder{{name: "a"}, {name: "b"}}, want: []string{"a.h", "b.h"}},
		{name: "a stops on headers and waits for the body", body: "x",
			filters: []recorder{{name: "a", stopHeaders: true}, {name: "b"}, {name: "c"}},
			want:    []string{"a.h", "a.b", "b.h", "c.h", "b.b", "c.b"}},
		{name: "b stops on headers", body: "x",
			filters: []recorder{{name: "a"}, {name: "b", stopHeaders: true}, {name: "c"}},
			want:    []string{"a.h", "b.h", "a.b", "b.b", "c.h", "c.b"}},
		{name: "a local reply ends the chain", body: "x",
			filters: []recorder{{name: "a"}, {name: "b", replyOnHeaders: true}, {name: "c"}},
			want:    []string{"a.h", "b.h"}, wantReply: true},
		{name: "stopping at the end of headers without a body", filters: []recorder{{name: "a", stopHeaders: true}, {name: "b"}},
			want: []string{"a.h"}, wantErr: errPaused},
		{name: "stopping at the end of the body", body: "x", filters: []recorder{{name: "a", stopBody: true}, {name: "b"}},
			want: []string{"a.h", "b.h", "a.b"}, wantErr: errPaused},
		{name: "no filters", body: "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log []string
			fs := make([]filterStream, len(tc.filters))
			for i := range tc.filters {
				tc.filters[i].log = &log
				fs[i] = &tc.filters[i]
			}
			h, b := headerMap{}, []byte(tc.body)
			lr, err := decode.run(context.Background(), fs, &h, &b)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if (lr != nil) != tc.wantReply {
				t.Errorf("local reply %v, want %v", lr, tc.wantReply)
			}
			if !slices.Equal(log, tc.want) {
				t.Errorf("order %v, want %v", log, tc.want)
			}
		})
	}
}
