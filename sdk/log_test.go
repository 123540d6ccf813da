package sdk_test

import (
	"strings"
	"testing"

	"github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm/proxytest"

	"github.com/wasmfleet/wasmfleet/sdk"
)

// field is one Entry call and the Field Logger.Line takes for the same.
type field struct {
	add func(e *sdk.Entry)
	f   sdk.Field
}

func str(k, v string) field {
	return field{func(e *sdk.Entry) { e.String(sdk.NewKey(k), v) }, sdk.String(k, v)}
}

func num(k string, v int64) field {
	return field{func(e *sdk.Entry) { e.Int(sdk.NewKey(k), v) }, sdk.Int(k, v)}
}

func unum(k string, v uint64) field {
	return field{func(e *sdk.Entry) { e.Uint(sdk.NewKey(k), v) }, sdk.Uint(k, v)}
}

// TestEntry: an Entry writes exactly the line Logger.Line renders for the
// same fields, at the level it began with, and a reused Entry keeps nothing
// of the previous line.
func TestEntry(t *testing.T) {
	host, reset := proxytest.NewHostEmulator(proxytest.NewEmulatorOption())
	defer reset()
	log := sdk.NewLogger("logging")
	var e sdk.Entry // one for every case, as a filter keeps one per plugin
	tests := []struct {
		name   string
		level  sdk.Level
		msg    string
		fields []field
		logs   func() []string
	}{
		{name: "no fields", level: sdk.LevelInfo, msg: "access", logs: host.GetInfoLogs},
		{name: "every kind", level: sdk.LevelInfo, msg: "access", logs: host.GetInfoLogs, fields: []field{
			str("path", "/v1/items?id=7"), num("duration_us", -1), unum("bytes_in", 18446744073709551615), str("empty", ""),
		}},
		{name: "escaped keys and values", level: sdk.LevelWarn, msg: "m\n", logs: host.GetWarnLogs, fields: []field{
			str("k\"\\", "a\"b\\c\nd\te\r\x00\x1f\u2028é\xff"), str("long", "0123456789abcdef0123456789abcdef\x01"),
		}},
		{name: "debug level", level: sdk.LevelDebug, msg: "d", logs: host.GetDebugLogs, fields: []field{num("n", 1)}},
		{name: "error level", level: sdk.LevelError, msg: "e", logs: host.GetErrorLogs, fields: []field{str("s", "v")}},
		{name: "huge value, beyond what the buffer keeps", level: sdk.LevelInfo, msg: "big", logs: host.GetInfoLogs, fields: []field{
			str("v", strings.Repeat("\x01", 20<<10)),
		}},
		{name: "shorter line after a longer one", level: sdk.LevelInfo, msg: "x", logs: host.GetInfoLogs},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(tt.logs())
			var fs []sdk.Field
			e.Begin(log, tt.level, tt.msg)
			for _, f := range tt.fields {
				f.add(&e)
				fs = append(fs, f.f)
			}
			e.Write()
			logs := tt.logs()
			if len(logs) != before+1 {
				t.Fatalf("%d lines at %s, want %d", len(logs), tt.level, before+1)
			}
			if want := log.Line(tt.level, tt.msg, fs...); logs[before] != want {
				t.Errorf("got  %s\nwant %s", logs[before], want)
			}
		})
	}
	// The emulator keeps the strings it was given: a reused buffer must not
	// have changed an earlier line.
	if first := host.GetInfoLogs()[0]; first != `{"level":"info","filter":"logging","msg":"access"}` {
		t.Errorf("first line changed to %s", first)
	}
}
