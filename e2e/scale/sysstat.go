package scale

import (
	"fmt"
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
