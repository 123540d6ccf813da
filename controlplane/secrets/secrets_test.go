package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fake resolves env NAME to "env-NAME" and file PATH to "file-PATH";
// names starting with "missing" are absent.
var fake = resolver{
	lookupEnv: func(name string) (string, bool) {
		if strings.HasPrefix(name, "missing") {
			return "", false
		}
		if name == "EMPTY" {
			return "", true
		}
		return "env-" + name, true
	},
	readFile: func(path string) (string, error) {
		if strings.HasPrefix(filepath.Base(path), "missing") {
			return "", fs.ErrNotExist
		}
		return "file-" + path + "\n", nil
	},
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		secrets int
		wantErr error
		errHas  []string
	}{
		{name: "empty", in: "", want: ""},
		{name: "no references stays byte for byte", in: "{ \"a\" : [1, 2.50, \"x\"],\n \"b\": {\"c\": null} }", want: "{ \"a\" : [1, 2.50, \"x\"],\n \"b\": {\"c\": null} }"},
		{name: "plain string that looks like a reference", in: `{"k":"{\"$secret\":{\"env\":\"X\"}}"}`, want: `{"k":"{\"$secret\":{\"env\":\"X\"}}"}`},
		{name: "env", in: `{"k": {"$secret": {"env": "KEY"}}}`, want: `{"k": "env-KEY"}`, secrets: 1},
		{name: "file, one trailing line break dropped", in: `{"k":{"$secret":{"file":"/s/key"}}}`, want: `{"k":"file-/s/key"}`, secrets: 1},
		{name: "nested in arrays, formatting kept", in: "{\"jwt\": {\"jwks\": {\"keys\": [\n  {\"kty\": \"oct\", \"k\" : { \"$secret\" : { \"env\" : \"A\" } } },\n  {\"k\": {\"$secret\": {\"file\": \"/b\"}}, \"kid\": \"b\"}]}}}",
			want: "{\"jwt\": {\"jwks\": {\"keys\": [\n  {\"kty\": \"oct\", \"k\" : \"env-A\" },\n  {\"k\": \"file-/b\", \"kid\": \"b\"}]}}}", secrets: 2},
		{name: "array element", in: `{"a":[{"$secret":{"env":"A"}},{"$secret":{"env":"A"}}]}`, want: `{"a":["env-A","env-A"]}`, secrets: 1},
		{name: "escaped key is a reference too", in: `{"k":{"\u0024secret":{"env":"A"}}}`, want: `{"k":"env-A"}`, secrets: 1},
		{name: "value escaped as JSON", in: `{"k":{"$secret":{"env":"Q\"<&>"}}}`, want: `{"k":"env-Q\"<&>"}`, secrets: 1},
		{name: "missing variable", in: `{"a":{"b":{"$secret":{"env":"missing_X"}}}}`, wantErr: ErrUnavailable,
			errHas: []string{"config.a.b", "$secret env missing_X", "not set"}},
		{name: "empty variable", in: `{"a":{"$secret":{"env":"EMPTY"}}}`, wantErr: ErrUnavailable, errHas: []string{"config.a", "env EMPTY", "empty"}},
		{name: "missing file", in: `{"keys":[{"k":{"$secret":{"file":"/etc/missing.key"}}}]}`, wantErr: fs.ErrNotExist,
			errHas: []string{"config.keys[0].k", "$secret file /etc/missing.key"}},
		{name: "every problem listed", in: `{"a":{"$secret":{"env":"missing_1"}},"b":{"$secret":{"env":"missing_2"}}}`, wantErr: ErrUnavailable,
			errHas: []string{"config.a: $secret env missing_1", "config.b: $secret env missing_2"}},
		{name: "odd key quoted in path", in: `{"a.b":{"$secret":{"env":"missing"}}}`, wantErr: ErrUnavailable, errHas: []string{`config["a.b"]`}},
		{name: "relative file", in: `{"a":{"$secret":{"file":"key"}}}`, wantErr: ErrReference, errHas: []string{"config.a", "absolute"}},
		{name: "both file and env", in: `{"a":{"$secret":{"file":"/k","env":"K"}}}`, wantErr: ErrReference, errHas: []string{"config.a", "exactly one"}},
		{name: "neither", in: `{"a":{"$secret":{}}}`, wantErr: ErrReference},
		{name: "unknown field", in: `{"a":{"$secret":{"path":"/k"}}}`, wantErr: ErrReference},
		{name: "field in other case", in: `{"a":{"$secret":{"FILE":"/k"}}}`, wantErr: ErrReference},
		{name: "string instead of object", in: `{"a":{"$secret":"/k"}}`, wantErr: ErrReference, errHas: []string{"config.a"}},
		{name: "null", in: `{"a":{"$secret":null}}`, wantErr: ErrReference},
		{name: "empty file name", in: `{"a":{"$secret":{"file":""}}}`, wantErr: ErrReference},
		{name: "not a variable name", in: `{"a":{"$secret":{"env":"A=B"}}}`, wantErr: ErrReference},
		{name: "other members after", in: `{"a":{"$secret":{"env":"A"},"x":1}}`, wantErr: ErrReference, errHas: []string{"config.a", "only member"}},
		{name: "other members before", in: `{"a":{"x":1,"$secret":{"env":"A"}}}`, wantErr: ErrReference, errHas: []string{"config.a", "only member"}},
		{name: "whole configuration", in: `{"$secret":{"env":"A"}}`, wantErr: ErrReference, errHas: []string{"itself"}},
		{name: "not JSON", in: `{"a":`, wantErr: ErrSyntax},
		{name: "trailing data", in: `{} {}`, wantErr: ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := fake.resolve([]byte(tt.in))
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				for _, s := range tt.errHas {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("err %q does not contain %q", err, s)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if string(got.Config) != tt.want {
				t.Errorf("got  %s\nwant %s", got.Config, tt.want)
			}
			if got.Secrets() != tt.secrets {
				t.Errorf("secrets = %d, want %d", got.Secrets(), tt.secrets)
			}
			if len(tt.in) > 0 && !json.Valid(got.Config) {
				t.Errorf("not JSON: %s", got.Config)
			}
		})
	}
}

func TestRefs(t *testing.T) {
	refs, err := Refs([]byte(`{"a":[{"k":{"$secret":{"file":"/f"}}}],"b":{"$secret":{"env":"E"}},"c":"plain"}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []Ref{{Path: "config.a[0].k", Source: Source{File: "/f"}}, {Path: "config.b", Source: Source{Env: "E"}}}
	if fmt.Sprint(refs) != fmt.Sprint(want) {
		t.Errorf("refs = %v, want %v", refs, want)
	}
}

// TestResolveReal reads a real file and a real variable.
func TestResolveReal(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "hs256.key")
	if err := os.WriteFile(key, []byte("c2VjcmV0LWZpbGUtdmFsdWU\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("WASMFLEET_TEST_SECRET", "s3cret-env-value")
	in := fmt.Sprintf(`{"f":{"$secret":{"file":%q}},"e":{"$secret":{"env":"WASMFLEET_TEST_SECRET"}}}`, key)
	got, err := Resolve([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"f":"c2VjcmV0LWZpbGUtdmFsdWU","e":"s3cret-env-value"}`; string(got.Config) != want {
		t.Errorf("got %s, want %s", got.Config, want)
	}
	for _, tt := range []struct {
		name, file, content, errHas string
	}{
		{name: "missing", file: filepath.Join(dir, "nope"), errHas: "no such file"},
		{name: "directory", file: dir, errHas: "is a directory"},
		{name: "too large", file: filepath.Join(dir, "big"), content: strings.Repeat("x", MaxValueBytes+1), errHas: "larger than"},
		{name: "not UTF-8", file: filepath.Join(dir, "bin"), content: "\xff\xfe", errHas: "not UTF-8"},
		{name: "empty", file: filepath.Join(dir, "empty"), content: "\n", errHas: "empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.content != "" {
				if err := os.WriteFile(tt.file, []byte(tt.content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := Resolve(fmt.Appendf(nil, `{"k":{"$secret":{"file":%q}}}`, tt.file))
			if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), tt.errHas) || !strings.Contains(err.Error(), "file "+tt.file) {
				t.Errorf("err = %v, want ErrUnavailable naming %s and saying %q", err, tt.file, tt.errHas)
			}
			if strings.TrimSpace(tt.content) != "" && strings.Contains(err.Error(), strings.TrimSpace(tt.content)) {
				t.Errorf("err holds the file's content: %v", err)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	r, err := fake.resolve([]byte(`{"a":{"$secret":{"env":"A"}},"b":{"$secret":{"env":"AB"}}}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, in, want string
	}{
		{name: "none", in: "nothing here", want: "nothing here"},
		{name: "one", in: "bad key env-A!", want: "bad key <redacted>!"},
		{name: "longest first", in: "env-AB and env-A", want: "<redacted> and <redacted>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := r.Redact(tt.in); got != tt.want {
				t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	base := errors.New("guest: bad key env-AB")
	err = r.RedactError(fmt.Errorf("wrapped: %w", base))
	if strings.Contains(err.Error(), "env-A") || !errors.Is(err, base) {
		t.Errorf("RedactError = %v (Is base: %v)", err, errors.Is(err, base))
	}
	for _, s := range []string{fmt.Sprint(r), fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r), mustJSON(t, struct{ R Resolved }{r})} {
		if strings.Contains(s, "env-A") {
			t.Errorf("printed form holds a secret: %s", s)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzResolve: any input gives a result or an error, never a panic; a
// result is JSON, holds no reference, and is the input itself when the
// input had none.
func FuzzResolve(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"a":1}`, `{"k":{"$secret":{"env":"A"}}}`, `{"k":[{"$secret":{"file":"/a"}},{"x":{"$secret":{"env":"B"}}}]}`,
		`{"$secret":{"env":"A"}}`, `{"k":{"$secret":{"env":"A"},"x":1}}`, `{"k":{"$secret":"x"}}`, `{"k":{"$secret":{"env":1}}}`,
		`{"k":{"$secret":{"env":"A"}}} x`, `[{"$secret":{"env":"A"}}]`, `"s"`, `{"k":{"$secret":{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := fake.resolve(in)
		if err != nil {
			return
		}
		if got.Secrets() == 0 && string(got.Config) != string(in) {
			t.Fatalf("no references, but %q became %q", in, got.Config)
		}
		if len(bytes.TrimSpace(in)) > 0 && !json.Valid(got.Config) {
			t.Fatalf("%q resolved to invalid JSON %q", in, got.Config)
		}
		if refs, err := Refs(got.Config); err != nil || len(refs) > 0 {
			t.Fatalf("%q resolved to %q, which has references %v (%v)", in, got.Config, refs, err)
		}
	})
}
