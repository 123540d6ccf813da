package filterbuild

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"

	"github.com/wasmfleet/wasmfleet/controlplane/config"
	"github.com/wasmfleet/wasmfleet/controlplane/types"
)

// ManifestFile is the name of a filter's manifest in its directory.
const ManifestFile = "manifest.json"

// Capabilities are the host features a manifest may declare.
var Capabilities = []string{"metrics", "http_call", "grpc_call", "shared_data", "shared_queue", "tick"}

// Sentinels for errors.Is.
var (
	ErrNoManifest = errors.New("no " + ManifestFile)
	ErrManifest   = errors.New("invalid manifest")
)

// semverRE is SemVer 2.0.0 (https://semver.org), without a "v" prefix.
var semverRE = regexp.MustCompile(`^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)` +
	`(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?` +
	`(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$`)

// ParseManifest decodes a manifest strictly (unknown fields, trailing data
// and wrong types are errors) and validates it.
func ParseManifest(b []byte) (types.Manifest, error) {
	var m types.Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return types.Manifest{}, fmt.Errorf("%w: %w", ErrManifest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return types.Manifest{}, fmt.Errorf("%w: trailing data after the JSON object", ErrManifest)
	}
	if err := ValidateManifest(m); err != nil {
		return types.Manifest{}, err
	}
	return m, nil
}

// ReadManifest reads and parses the manifest at path.
func ReadManifest(path string) (types.Manifest, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return types.Manifest{}, fmt.Errorf("filterbuild: %s: %w", path, ErrNoManifest)
	}
	if err != nil {
		return types.Manifest{}, fmt.Errorf("filterbuild: %w", err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return types.Manifest{}, fmt.Errorf("filterbuild: %s: %w", path, err)
	}
	return m, nil
}

// ValidateManifest returns every problem, joined, each naming its field.
func ValidateManifest(m types.Manifest) error {
	var errs []error
	if !config.ValidFilterName(m.Name) {
		errs = append(errs, fmt.Errorf("%w: name: %q: %w", ErrManifest, m.Name, config.ErrFilterName))
	}
	if !semverRE.MatchString(m.Version) {
		errs = append(errs, fmt.Errorf("%w: version: %q is not a semantic version (MAJOR.MINOR.PATCH)", ErrManifest, m.Version))
	}
	seen := map[string]bool{}
	for i, c := range m.Capabilities {
		switch {
		case !slices.Contains(Capabilities, c):
			errs = append(errs, fmt.Errorf("%w: capabilities[%d]: unknown capability %q (known: %v)", ErrManifest, i, c, Capabilities))
		case seen[c]:
			errs = append(errs, fmt.Errorf("%w: capabilities[%d]: %q listed twice", ErrManifest, i, c))
		}
		seen[c] = true
	}
	return errors.Join(errs...)
}
