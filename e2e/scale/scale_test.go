package scale_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/wasmfleet/wasmfleet/controlplane/abi"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/e2e/scale"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

// lastCustom checks that out is module plus one custom section and returns
// that section's name and payload.
func lastCustom(t *testing.T, module, out []byte) (string, []byte) {
	t.Helper()
	if !bytes.HasPrefix(out, module) {
		t.Fatal("the module's own bytes changed")
	}
	info, err := abi.Inspect(out)
	if err != nil {
		t.Fatalf("Inspect: %v", err)
	}
	before := 0
	if len(module) > 8 {
		mi, err := abi.Inspect(module)
		if err != nil {
			t.Fatalf("Inspect(module): %v", err)
		}
		before = len(mi.Sections)
	}
	if len(info.Sections) != before+1 {
		t.Fatalf("%d sections, want %d", len(info.Sections), before+1)
	}
	s := info.Sections[len(info.Sections)-1]
	if s.ID != abi.SectionCustom || s.End != len(out) {
		t.Fatalf("last section %+v of %d bytes, want a custom section at the end", s, len(out))
	}
	// The payload follows the name (its LEB128 length, then its bytes).
	body := out[s.Offset+1:]
	_, n := binary.Uvarint(body)
	body = body[n:]
	nameLen, n := binary.Uvarint(body)
	return s.Name, body[n+int(nameLen):]
}

func TestVariant(t *testing.T) {
	module := wasmtest.Module(t, "filters/logging")
	tests := []struct {
		name string
		n    uint64
	}{
		{name: "zero", n: 0},
		{name: "one", n: 1},
		{name: "large counter", n: 1<<63 + 5},
	}
	seen := map[types.Digest]string{types.DigestOf(module): "the module itself"}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := scale.Variant(module, tc.n)
			name, payload := lastCustom(t, module, out)
			if name != scale.VariantSection {
				t.Errorf("section name %q, want %q", name, scale.VariantSection)
			}
			if got := binary.LittleEndian.Uint64(payload); len(payload) != 8 || got != tc.n {
				t.Errorf("payload % x, want %d as 8 bytes", payload, tc.n)
			}
			d := types.DigestOf(out)
			if other, dup := seen[d]; dup {
				t.Errorf("digest %s equals that of %s", d.Short(), other)
			}
			seen[d] = tc.name
			info, err := abi.Inspect(out)
			if err != nil {
				t.Fatal(err)
			}
			if err := abi.CheckExports(info).Err(); err != nil {
				t.Errorf("exports no longer pass: %v", err)
			}
		})
	}
}

func TestAppendCustomSection(t *testing.T) {
	header := []byte("\x00asm\x01\x00\x00\x00")
	tests := []struct {
		name    string
		section string
		payload []byte
	}{
		{name: "empty name and payload", section: "", payload: nil},
		{name: "name over 127 bytes needs a two-byte length", section: strings.Repeat("n", 200), payload: []byte{1}},
		{name: "payload over 16 KiB needs a three-byte size", section: "big", payload: bytes.Repeat([]byte{7}, 20000)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := scale.AppendCustomSection(header, tc.section, tc.payload)
			name, payload := lastCustom(t, header, out)
			if name != tc.section || !bytes.Equal(payload, tc.payload) {
				t.Errorf("got section %q with %d payload bytes, want %q with %d", name, len(payload), tc.section, len(tc.payload))
			}
		})
	}
}

// FuzzAppendCustomSection: whatever the name and payload, the result is
// the module plus one well-formed custom section holding exactly them.
func FuzzAppendCustomSection(f *testing.F) {
	f.Add("wasmfleet.bench", []byte{1, 2, 3})
	f.Add("", []byte{})
	f.Add(strings.Repeat("x", 300), bytes.Repeat([]byte{0xff}, 5000))
	header := []byte("\x00asm\x01\x00\x00\x00")
	f.Fuzz(func(t *testing.T, name string, payload []byte) {
		out := scale.AppendCustomSection(header, name, payload)
		info, err := abi.Inspect(out)
		if errors.Is(err, abi.ErrMalformed) && !utf8.ValidString(name) {
			return // custom section names must be UTF-8; Inspect says so
		}
		if err != nil {
			t.Fatalf("Inspect: %v", err)
		}
		gotName, gotPayload := lastCustom(t, header, out)
		if gotName != name || !bytes.Equal(gotPayload, payload) || len(info.Sections) != 1 {
			t.Fatalf("round trip lost the section: name %q payload %d bytes", gotName, len(gotPayload))
		}
	})
}

func TestProbeConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  scale.ProbeConfig
		ok   bool
	}{
		{name: "complete", cfg: scale.ProbeConfig{XDSAddr: "127.0.0.1:1", Extensions: []string{"wasmfleet.slot.0"}}, ok: true},
		{name: "no address", cfg: scale.ProbeConfig{Extensions: []string{"wasmfleet.slot.0"}}},
		{name: "no names", cfg: scale.ProbeConfig{XDSAddr: "127.0.0.1:1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := scale.NewProbe(tc.cfg)
			if tc.ok != (err == nil) || (err != nil && !errors.Is(err, scale.ErrProbeConfig)) {
				t.Errorf("NewProbe() = %v, want ok=%v or ErrProbeConfig", err, tc.ok)
			}
		})
	}
}

// TestConvergence runs the path BenchmarkFleetConvergence measures with a
// small fleet: a new module written to the watched directory reaches every
// node of a fleet in a child process, not before it was written, and the
// controller then promotes it because every node accepted it.
func TestConvergence(t *testing.T) {
	tests := []struct {
		name    string
		n       int
		perConn int
	}{
		{name: "20 nodes, one connection each", n: 20, perConn: 1},
		{name: "20 nodes, 8 per connection", n: 20, perConn: 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := startPlane(t, 20*time.Millisecond)
			_, v0 := p.rollOut(t)
			fleet := startFleet(t, p.addrs.XDS, tc.n, tc.perConn, v0)

			d, start := p.writeVariant(t)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a, err := p.probe.WaitDigest(ctx, d)
			if err != nil {
				t.Fatal(err)
			}
			if a.Version == v0 {
				t.Fatalf("new module %s arrived in the old ECDS version %s", d.Short(), v0)
			}
			s, err := fleet.WaitAcked(ctx, a.Version)
			if err != nil {
				t.Fatal(err)
			}
			if s.Acked != tc.n || s.Missing != 0 {
				t.Errorf("%d acked, %d missing; want %d and 0", s.Acked, s.Missing, tc.n)
			}
			if s.First.Before(start) || s.Last.Before(s.First) {
				t.Errorf("arrivals %v..%v, want after the write at %v and in order", s.First, s.Last, start)
			}
			if s.CPU <= 0 {
				t.Errorf("child CPU %v, want it measured", s.CPU)
			}
			if _, err := p.waitPromoted(ctx, filterName, d, a.Version); err != nil {
				t.Errorf("after every node accepted it: %v", err)
			}
		})
	}
}

// TestRemoteFleetReportsMissing: a version no node gets ends in an error
// at the deadline that counts the nodes still lacking it.
func TestRemoteFleetReportsMissing(t *testing.T) {
	p := startPlane(t, 20*time.Millisecond)
	_, v0 := p.rollOut(t)
	fleet := startFleet(t, p.addrs.XDS, 3, 1, v0)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	s, err := fleet.WaitAcked(ctx, "no-such-version")
	if err == nil {
		t.Fatal("WaitAcked succeeded for a version never sent")
	}
	// The child's deadline and ours are the same instant: either side may
	// notice first. When the child does, its summary counts the missing.
	if !errors.Is(err, context.DeadlineExceeded) && s.Missing != 3 {
		t.Errorf("err %v with %d missing, want a deadline error or 3 missing", err, s.Missing)
	}
}

// TestServeFleetInput: the child ends cleanly when its input ends and
// refuses a line that is not a request, naming it.
func TestServeFleetInput(t *testing.T) {
	// An address nothing listens on: the nodes only retry, which is all
	// these cases need.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{name: "input ends", in: ""},
		{name: "not a request", in: "hello\n", wantErr: scale.ErrChild},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := scale.ServeFleet(context.Background(), scale.FleetSpec{XDSAddr: addr, N: 2}, strings.NewReader(tc.in), &out)
			if tc.wantErr == nil && err != nil || tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("ServeFleet() = %v, want %v", err, tc.wantErr)
			}
			if out.Len() != 0 {
				t.Errorf("replied %q to no request", out.String())
			}
		})
	}
}
