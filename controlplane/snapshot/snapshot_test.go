package snapshot

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"

	core "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	wasmfilter "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/wasm/v3"
	"github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"github.com/envoyproxy/go-control-plane/pkg/resource/v3"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	wtypes "github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmtest"
)

func digest(s string) wtypes.Digest { return wtypes.DigestOf([]byte(s)) }

// baseInput is the default config with three filters, each at v1, served
// as remote code (the resources stay small; inline has its own cases).
func baseInput() (Input, wtypes.Assignment) {
	cfg := config.Default()
	cfg.Filters = []config.Filter{
		{Name: "auth", Code: config.CodeRemote}, {Name: "transform", Code: config.CodeRemote}, {Name: "logging", Code: config.CodeRemote}}
	in := inputFrom(cfg, nil)
	a := wtypes.Assignment{
		"auth":      {Stable: digest("auth-v1")},
		"transform": {Stable: digest("transform-v1")},
		"logging":   {Stable: digest("logging-v1")},
	}
	return in, a
}

// buildOne builds one node's snapshot with b.
func buildOne(b Builder, in Input, a wtypes.Assignment) (*cache.Snapshot, error) {
	nb, err := b.For(in)
	if err != nil {
		return nil, err
	}
	return nb.Build(a)
}

func versions(s *cache.Snapshot) map[string]string {
	out := map[string]string{}
	for _, typ := range typeOrder {
		out[typ] = s.GetVersion(typ)
	}
	return out
}

// TestVersionsTrackContent checks the property the resource design exists
// for: rollouts change ECDS/RDS only, so no listener drains.
func TestVersionsTrackContent(t *testing.T) {
	lds, rds, cds, ecds := resource.ListenerType, resource.RouteType, resource.ClusterType, resource.ExtensionConfigType
	tests := []struct {
		name   string
		change func(in *Input, a wtypes.Assignment)
		want   []string
	}{
		{name: "identical input", change: func(*Input, wtypes.Assignment) {}},
		{name: "new stable version", change: func(_ *Input, a wtypes.Assignment) {
			a["auth"] = wtypes.FilterVersions{Stable: digest("auth-v2")}
		}, want: []string{ecds}},
		{name: "request split starts", change: func(_ *Input, a wtypes.Assignment) {
			a["auth"] = wtypes.FilterVersions{Stable: digest("auth-v1"), Candidate: digest("auth-v2"), CandidateShare: 1000}
		}, want: []string{rds, ecds}},
		{name: "candidate at 100% is the stable", change: func(_ *Input, a wtypes.Assignment) {
			a["auth"] = wtypes.FilterVersions{Stable: digest("auth-v0"), Candidate: digest("auth-v1"), CandidateShare: 10000}
		}},
		{name: "candidate at 0% is ignored", change: func(_ *Input, a wtypes.Assignment) {
			a["auth"] = wtypes.FilterVersions{Stable: digest("auth-v1"), Candidate: digest("auth-v2")}
		}},
		// The routes enable the same slots, but their version names the
		// filter each one runs, for the sequencing stage.
		{name: "chain reordered", change: func(in *Input, _ wtypes.Assignment) {
			in.Filters[0], in.Filters[1] = in.Filters[1], in.Filters[0]
		}, want: []string{rds, ecds}},
		{name: "plugin configuration changed", change: func(in *Input, _ wtypes.Assignment) {
			in.Filters[2].Config = []byte(`{"level":"debug"}`)
		}, want: []string{ecds}},
		{name: "filter removed", change: func(_ *Input, a wtypes.Assignment) {
			delete(a, "logging")
		}, want: []string{rds, ecds}},
		{name: "route added", change: func(in *Input, _ wtypes.Assignment) {
			l := &in.Managed.Listeners[0]
			l.Routes = append(slices.Clone(l.Routes), config.Route{Prefix: "/api", Cluster: "upstream"})
		}, want: []string{rds}},
		{name: "chain longer than the slots", change: func(in *Input, _ wtypes.Assignment) {
			in.Managed.FilterSlots = 2
		}, want: []string{lds, ecds}},
		{name: "module server moved", change: func(in *Input, _ wtypes.Assignment) {
			in.ModuleURL = "http://10.1.1.1:18001"
		}, want: []string{cds, ecds}},
	}
	b := NewBuilder()
	in, a := baseInput()
	base, err := buildOne(b, in, a)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, a := baseInput()
			tt.change(&in, a)
			s, err := buildOne(b, in, a)
			if err != nil {
				t.Fatal(err)
			}
			validate(t, s)
			var changed []string
			for _, typ := range typeOrder {
				if s.GetVersion(typ) != base.GetVersion(typ) {
					changed = append(changed, typ)
				}
			}
			if !slices.Equal(changed, tt.want) {
				t.Errorf("changed types = %v, want %v", changed, tt.want)
			}
		})
	}
}

func TestMemoisedAndStableAcrossRestarts(t *testing.T) {
	in, a := baseInput()
	b := NewBuilder()
	s1, err := buildOne(b, in, a)
	if err != nil {
		t.Fatal(err)
	}
	in2, a2 := baseInput() // equal values, different maps and slices
	s2, err := buildOne(b, in2, a2)
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 {
		t.Error("equal input built twice, want the memoised snapshot")
	}
	restarted, err := buildOne(NewBuilder(), in, a)
	if err != nil {
		t.Fatal(err)
	}
	if restarted == s1 {
		t.Fatal("a new builder returned another builder's snapshot")
	}
	if got, want := versions(restarted), versions(s1); !mapsEqual(got, want) {
		t.Errorf("versions after restart = %v, want %v", got, want)
	}
	a["auth"] = wtypes.FilterVersions{Stable: digest("auth-v2")}
	s3, err := buildOne(b, in, a)
	if err != nil {
		t.Fatal(err)
	}
	if s3 == s1 {
		t.Error("different assignment returned the memoised snapshot")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestMemoEvictsOldInputs builds more distinct inputs than the memo holds and
// checks that the first is built afresh (with the same versions).
func TestMemoEvictsOldInputs(t *testing.T) {
	b := NewBuilder().(*builder)
	in, a := baseInput()
	first, err := buildOne(b, in, a)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2*memoLimit + 1 {
		a := wtypes.Assignment{"auth": {Stable: digest(fmt.Sprint("auth-", i))}}
		if _, err := buildOne(b, in, a); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(b.cur) + len(b.prev); n > 2*memoLimit {
		t.Errorf("memo holds %d snapshots, want at most %d", n, 2*memoLimit)
	}
	again, err := buildOne(b, in, a)
	if err != nil {
		t.Fatal(err)
	}
	if again == first {
		t.Error("oldest input still memoised after 2*memoLimit newer ones")
	}
	if !mapsEqual(versions(again), versions(first)) {
		t.Error("rebuilt snapshot has other versions")
	}
}

// TestLayoutKey: the per-node part of the memo key tells layouts apart
// exactly when they differ.
func TestLayoutKey(t *testing.T) {
	fill := func(f, d string) wtypes.SlotFill { return wtypes.SlotFill{Filter: f, Digest: digest(d)} }
	base := wtypes.Layout{
		Slots: []wtypes.SlotFill{fill("auth", "a1"), fill("auth", "a1"), fill("transform", "t1"), fill("transform", "t2"), {}, {}},
		Chain: []wtypes.Link{{Pair: 0, Filter: "auth"}, {Pair: 1, Filter: "transform", Share: 1000}},
	}
	edit := func(f func(l *wtypes.Layout)) wtypes.Layout {
		l := wtypes.Layout{Slots: slices.Clone(base.Slots), Chain: slices.Clone(base.Chain)}
		f(&l)
		return l
	}
	tests := []struct {
		name     string
		l        wtypes.Layout
		wantSame bool
	}{
		{name: "equal copy", l: edit(func(*wtypes.Layout) {}), wantSame: true},
		{name: "slot digest differs", l: edit(func(l *wtypes.Layout) { l.Slots[1] = fill("auth", "a2") })},
		{name: "slot emptied", l: edit(func(l *wtypes.Layout) { l.Slots[3] = wtypes.SlotFill{} })},
		{name: "more pairs", l: edit(func(l *wtypes.Layout) { l.Slots = append(l.Slots, wtypes.SlotFill{}, wtypes.SlotFill{}) })},
		{name: "share differs", l: edit(func(l *wtypes.Layout) { l.Chain[1].Share = 1001 })},
		{name: "pair differs", l: edit(func(l *wtypes.Layout) { l.Chain[1].Pair = 2 })},
		{name: "link missing", l: edit(func(l *wtypes.Layout) { l.Chain = l.Chain[:1] })},
		{name: "empty", l: wtypes.Layout{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if same := layoutKey(tt.l) == layoutKey(base); same != tt.wantSame {
				t.Errorf("same key = %v, want %v", same, tt.wantSame)
			}
		})
	}
	// Length prefixes keep boundaries: a name's tail cannot pass for a digest.
	a := wtypes.Layout{Slots: []wtypes.SlotFill{{Filter: "ab", Digest: "c"}, {}}}
	b := wtypes.Layout{Slots: []wtypes.SlotFill{{Filter: "a", Digest: "bc"}, {}}}
	if layoutKey(a) == layoutKey(b) {
		t.Error("boundary shift gives equal keys")
	}
}

// with returns a copy of a with filter set to fv.
func with(a wtypes.Assignment, filter string, fv wtypes.FilterVersions) wtypes.Assignment {
	out := maps.Clone(a)
	out[filter] = fv
	return out
}

// TestRealModule sends a compiled filter both ways and checks Envoy would get
// exactly its bytes or its digest.
func TestRealModule(t *testing.T) {
	mod := wasmtest.Module(t, "internal/wasmtest/testdata/hello")
	d := wtypes.DigestOf(mod)
	tests := []struct {
		name string
		code config.Code
	}{
		{name: "remote", code: config.CodeRemote},
		{name: "inline", code: config.CodeInline},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Filters = []config.Filter{{Name: "hello", Code: tt.code}}
			in := inputFrom(cfg, map[wtypes.Digest][]byte{d: mod})
			s, err := buildOne(NewBuilder(), in, wtypes.Assignment{"hello": {Stable: d}})
			if err != nil {
				t.Fatal(err)
			}
			validate(t, s)
			tec := s.GetResources(resource.ExtensionConfigType)[SlotName(0, false)].(*core.TypedExtensionConfig)
			var w wasmfilter.Wasm
			if err := tec.GetTypedConfig().UnmarshalTo(&w); err != nil {
				t.Fatal(err)
			}
			code := w.GetConfig().GetVmConfig().GetCode()
			switch tt.code {
			case config.CodeInline:
				if got := code.GetLocal().GetInlineBytes(); wtypes.DigestOf(got) != d {
					t.Errorf("inline bytes have digest %s, want %s", wtypes.DigestOf(got).Short(), d.Short())
				}
			default:
				r := code.GetRemote()
				if r.GetSha256() != string(d) || r.GetHttpUri().GetUri() != "http://127.0.0.1:18001/modules/sha256/"+string(d) {
					t.Errorf("remote = %v", r)
				}
			}
		})
	}
}

func TestBuildErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Input)
		want   error
	}{
		{name: "inline without a source", change: func(in *Input) {
			in.Filters[0].Code = config.CodeInline
			in.Inline = nil
		}, want: ErrInline},
		{name: "inline digest unknown", change: func(in *Input) {
			in.Filters[0].Code = config.CodeInline
		}, want: ErrInline},
		{name: "module URL without host", change: func(in *Input) { in.ModuleURL = "http://" }, want: ErrModuleURL},
		{name: "module URL not http", change: func(in *Input) { in.ModuleURL = "ftp://x:1" }, want: ErrModuleURL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, a := baseInput()
			tt.change(&in)
			_, err := buildOne(NewBuilder(), in, a)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Build error = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestConcurrentBuild builds from many goroutines, half of the time through
// one NodeBuilder they share (as a reconcile could), half of the time through
// a NodeBuilder of their own for an equal input.
func TestConcurrentBuild(t *testing.T) {
	b := NewBuilder()
	in, a := baseInput()
	want, err := buildOne(NewBuilder(), in, a)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := b.For(in)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				in, a := baseInput()
				var s *cache.Snapshot
				var err error
				if i%2 == 0 {
					a["auth"] = wtypes.FilterVersions{Stable: digest(fmt.Sprint("auth-", g%4))}
					s, err = buildOne(b, in, a)
				} else {
					s, err = shared.Build(a)
				}
				if err != nil {
					errs <- err
					return
				}
				if i%2 == 1 && !mapsEqual(versions(s), versions(want)) {
					errs <- fmt.Errorf("goroutine %d: versions %v, want %v", g, versions(s), versions(want))
					return
				}
				// Readers of a shared snapshot, as the cache's delta path is.
				_ = s.GetVersionMap(resource.ExtensionConfigType)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkBuild1000Nodes measures one rollout round: a filter's version
// changes and every node's snapshot is rebuilt and set on a real cache. 10%
// of the nodes run a transform candidate, so there are two assignments.
func BenchmarkBuild1000Nodes(b *testing.B) { benchmarkBuild(b, 1000) }

// BenchmarkBuild10000Nodes is the same round at the fleet size the scale
// benchmarks use.
func BenchmarkBuild10000Nodes(b *testing.B) { benchmarkBuild(b, 10000) }

func benchmarkBuild(b *testing.B, nodes int) {
	in, _ := baseInput()
	sc := cache.NewSnapshotCache(true, cache.IDHash{}, nil)
	bld := NewBuilder()
	ctx := context.Background()
	ids := make([]string, nodes)
	for n := range ids {
		ids[n] = fmt.Sprint("node-", n)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		auth := digest(fmt.Sprint("auth-", i))
		nb, err := bld.For(in) // once per reconcile, as the controller does
		if err != nil {
			b.Fatal(err)
		}
		for n, id := range ids {
			a := wtypes.Assignment{
				"auth":      {Stable: auth},
				"transform": {Stable: digest("transform-v1")},
				"logging":   {Stable: digest("logging-v1")},
			}
			if n%10 == 0 {
				a["transform"] = wtypes.FilterVersions{Stable: digest("transform-v2")}
			}
			s, err := nb.Build(a)
			if err != nil {
				b.Fatal(err)
			}
			if err := sc.SetSnapshot(ctx, id, s); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// TestConfigKey: the key changes with every setting wasmConfig puts in the
// resource, so the sequencing stage never takes one config for another.
func TestConfigKey(t *testing.T) {
	base := config.Filter{Name: "transform"}.WithDefaults()
	d := digest("transform-v1")
	tests := []struct {
		name   string
		change func(f *config.Filter)
	}{
		{name: "allow_on_headers_stop_iteration", change: func(f *config.Filter) { f.AllowOnHeadersStopIteration = true }},
		{name: "env value", change: func(f *config.Filter) { f.VM.Env = map[string]string{"GOGC": "50"} }},
		{name: "env added", change: func(f *config.Filter) {
			f.VM.Env = map[string]string{"GOGC": config.DefaultGOGC, "GOMEMLIMIT": "8MiB"}
		}},
		{name: "env name", change: func(f *config.Filter) { f.VM.Env = map[string]string{"GOGD": config.DefaultGOGC} }},
		{name: "plugin configuration", change: func(f *config.Filter) { f.Config = []byte(`{}`) }},
		{name: "plugin configuration string", change: func(f *config.Filter) { f.Config = []byte(`"{}"`) }},
		{name: "plugin configuration bytes", change: func(f *config.Filter) { f.ConfigBase64 = "e30=" }},
		{name: "vm configuration", change: func(f *config.Filter) { f.VM.Configuration = []byte(`"warm"`) }},
		{name: "root id", change: func(f *config.Filter) { f.RootID = "other_root" }},
	}
	in, _ := baseInput()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := base
			tt.change(&f)
			if ConfigKey(in, f, d) == ConfigKey(in, base, d) {
				t.Fatalf("same key after changing %s", tt.name)
			}
		})
	}
	if ConfigKey(in, base, d) != ConfigKey(in, config.Filter{Name: "transform"}.WithDefaults(), d) {
		t.Fatal("equal settings, different keys")
	}
}

// TestConfigKeyStable: keys are part of the versions nodes report after a
// control-plane restart or upgrade; a key computed differently would make
// every node look as if it ran another config. The values were computed
// by the first release of the key.
func TestConfigKeyStable(t *testing.T) {
	in, _ := baseInput()
	in.ModuleURL = "http://127.0.0.1:18001"
	d := digest("transform-v1")
	base := config.Filter{Name: "transform"}.WithDefaults()
	all := base
	all.Config = []byte(`{"a":1}`)
	all.ConfigBase64 = "e30="
	all.VM.Configuration = []byte(`"warm"`)
	all.VM.Env = map[string]string{"GOGC": "50", "GOMEMLIMIT": "8MiB"}
	all.Code = config.CodeRemote
	all.RootID = "root"
	all.AllowOnHeadersStopIteration = true
	for _, tt := range []struct {
		f    config.Filter
		want string
	}{{base, "transform@4f73f1e2"}, {all, "transform@98f4e929"}} {
		if got := ConfigKey(in, tt.f, d); got != tt.want {
			t.Errorf("ConfigKey = %s, want %s", got, tt.want)
		}
	}
}
