package scale

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// CPUTime is the user plus system CPU time this process has used so far.
// Deltas of it around a measurement give the CPU the measurement cost,
// across all goroutines and threads (and the GC).
func CPUTime() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("scale: getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
}

// RaiseFDLimit raises this process's soft limit on open files to its hard
// limit (thousands of gRPC connections need thousands of descriptors) and
// returns the limit now in force.
func RaiseFDLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("scale: getrlimit nofile: %w", err)
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			return 0, fmt.Errorf("scale: setrlimit nofile %d: %w", lim.Max, err)
		}
	}
	return lim.Cur, nil
}

// ResetPeakRSS starts a new peak for PeakRSS: Linux's clear_refs value 5
// resets the process's high-water mark of resident memory to its current
// size.
func ResetPeakRSS() error {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		return fmt.Errorf("scale: reset peak rss: %w", err)
	}
	return nil
}

// PeakRSS is the most resident memory this process has had since it
// started or since the last ResetPeakRSS (VmHWM), in bytes.
func PeakRSS() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("scale: peak rss: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("scale: peak rss: %q: %w", line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("scale: peak rss: no VmHWM in /proc/self/status")
}
