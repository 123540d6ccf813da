package filterbuild

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/wasmfleet/wasmfleet/controlplane/types"
	"github.com/wasmfleet/wasmfleet/internal/wasmbuild"
)

// FiltersDir is where BuildAll looks for filters, relative to the repository root.
const FiltersDir = "filters"

// Result is one built filter.
type Result struct {
	Manifest types.Manifest
	// Module and ManifestPath are the files written: outDir/NAME.wasm and
	// outDir/NAME.manifest.json.
	Module       string
	ManifestPath string
	Size         int64
	Digest       types.Digest
}

// ErrNameMismatch: the manifest's name is not the filter directory's name
// (the name is how files, metrics and xDS resources find the filter).
var ErrNameMismatch = errors.New("manifest name differs from the directory name")

// Build compiles the filter in filterDir (relative to repoRoot, or
// absolute) to outDir/NAME.wasm and writes its validated manifest to
// outDir/NAME.manifest.json. Both files are written to a temporary name and
// synced, then renamed one right after the other, manifest last, so a
// watcher sees each appear whole, and sees them together: the watched
// directory's source reports a module renamed into place a few milliseconds
// later, with the manifest beside it if it is there by then. On error
// nothing is left in outDir.
func Build(ctx context.Context, repoRoot, filterDir, outDir string) (Result, error) {
	dir := filterDir
	if !filepath.IsAbs(dir) {
		dir = filepath.Join(repoRoot, dir)
	}
	m, err := ReadManifest(filepath.Join(dir, ManifestFile))
	if err != nil {
		return Result{}, err
	}
	if base := filepath.Base(dir); m.Name != base {
		return Result{}, fmt.Errorf("filterbuild: %s: %w: %q vs %q", dir, ErrNameMismatch, m.Name, base)
	}
	rel, err := filepath.Rel(repoRoot, dir)
	if err != nil {
		return Result{}, fmt.Errorf("filterbuild: %s: %w", dir, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Result{}, fmt.Errorf("filterbuild: %w", err)
	}
	tmp, err := os.CreateTemp(outDir, "."+m.Name+".wasm.*")
	if err != nil {
		return Result{}, fmt.Errorf("filterbuild: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // no-op once renamed
	if err := wasmbuild.Build(ctx, repoRoot, "./"+filepath.ToSlash(rel), tmp.Name()); err != nil {
		return Result{}, fmt.Errorf("filterbuild: %s: %w", m.Name, err)
	}
	wasm, err := os.ReadFile(tmp.Name())
	if err != nil {
		return Result{}, fmt.Errorf("filterbuild: %w", err)
	}
	manifest, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Result{}, fmt.Errorf("filterbuild: %s: %w", m.Name, err)
	}
	res := Result{
		Manifest:     m,
		Module:       filepath.Join(outDir, m.Name+".wasm"),
		ManifestPath: filepath.Join(outDir, m.Name+".manifest.json"),
		Size:         int64(len(wasm)),
		Digest:       types.DigestOf(wasm),
	}
	manifestTmp, err := writeTemp(res.ManifestPath, append(manifest, '\n'))
	if err != nil {
		return Result{}, fmt.Errorf("filterbuild: %s: %w", m.Name, err)
	}
	defer os.Remove(manifestTmp) // no-op once renamed
	if err := commit(tmp.Name(), res.Module); err != nil {
		return Result{}, fmt.Errorf("filterbuild: %s: %w", m.Name, err)
	}
	if err := os.Rename(manifestTmp, res.ManifestPath); err != nil {
		os.Remove(res.Module)
		return Result{}, fmt.Errorf("filterbuild: %s: %w", m.Name, err)
	}
	return res, nil
}

// BuildAll builds each of dirs (relative to repoRoot, or absolute), or,
// when dirs is empty, every directory under repoRoot/filters that has a
// manifest.json, in name order. It builds all it can and returns the
// results with every failure joined. A cold Go build cache makes each
// filter take minutes, so a line per filter goes to progress (if not nil)
// as it starts and as it ends: a silent build of several minutes looks hung.
func BuildAll(ctx context.Context, repoRoot string, dirs []string, outDir string, progress io.Writer) ([]Result, error) {
	if progress == nil {
		progress = io.Discard
	}
	if len(dirs) == 0 {
		var err error
		if dirs, err = filterDirs(repoRoot); err != nil {
			return nil, err
		}
	}
	var (
		results []Result
		errs    []error
	)
	for i, dir := range dirs {
		if err := ctx.Err(); err != nil {
			errs = append(errs, fmt.Errorf("filterbuild: %w", err))
			break
		}
		fmt.Fprintf(progress, "building %s (%d/%d)...\n", filepath.Base(dir), i+1, len(dirs))
		start := time.Now()
		res, err := Build(ctx, repoRoot, dir, outDir)
		if err != nil {
			fmt.Fprintf(progress, "failed %s after %s\n", filepath.Base(dir), time.Since(start).Round(time.Second))
			errs = append(errs, err)
			continue
		}
		fmt.Fprintf(progress, "built %s: %s, %.2f MB in %s\n", res.Manifest.Name, res.Module, float64(res.Size)/1e6, time.Since(start).Round(time.Second))
		results = append(results, res)
	}
	return results, errors.Join(errs...)
}

// filterDirs lists the directories under repoRoot/filters that have a
// manifest.json, relative to repoRoot, in name order.
func filterDirs(repoRoot string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(repoRoot, FiltersDir))
	if err != nil {
		return nil, fmt.Errorf("filterbuild: %w", err)
	}
	var dirs []string
	for _, e := range entries { // os.ReadDir sorts by name
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(FiltersDir, e.Name())
		if _, err := os.Stat(filepath.Join(repoRoot, dir, ManifestFile)); errors.Is(err, os.ErrNotExist) {
			continue
		}
		dirs = append(dirs, dir)
	}
	return dirs, nil
}

// commit makes the finished temporary file tmp readable, syncs it to disk
// and renames it to path.
func commit(tmp, path string) error {
	if err := finish(tmp); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// finish makes the finished temporary file tmp readable and syncs it to
// disk.
func finish(tmp string) error {
	if err := os.Chmod(tmp, 0o644); err != nil {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// writeTemp writes data to a finished temporary file beside path, for the
// caller to rename to path, and returns its name.
func writeTemp(path string, data []byte) (string, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return "", err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = finish(f.Name())
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}
