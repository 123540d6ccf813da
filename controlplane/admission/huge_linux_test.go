package admission

import (
	"context"
	"errors"
	"runtime/debug"
	"slices"
	"syscall"
	"testing"
)

// TestAdmitHugeModuleRefusedUnread hands Admit 200 MB it cannot read: the
// bytes are an anonymous mapping with no access rights, so nothing is
// allocated or committed, and any read faults. With SetPanicOnFault a read
// would panic and fail the test. Passing shows the size check refuses the
// module before anything (hashing, parsing, logging) touches its bytes.
func TestAdmitHugeModuleRefusedUnread(t *testing.T) {
	const size = 200 << 20
	huge, err := syscall.Mmap(-1, 0, size, syscall.PROT_NONE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatalf("mmap: %v", err)
	}
	t.Cleanup(func() { syscall.Munmap(huge) })

	tests := []struct {
		name string
		max  int64
	}{
		{name: "default limit", max: 0},
		{name: "one byte under", max: size - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Per goroutine, so here, where Admit runs.
			defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
			a := New(Config{MaxModuleBytes: tt.max, Runtime: testRuntime})
			rep, err := a.Admit(context.Background(), Request{File: "filters.d/huge.wasm", Filter: "huge", Module: huge})
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("Admit error = %v, want ErrTooLarge", err)
			}
			if !slices.Equal(checkNames(rep), []string{CheckSize}) {
				t.Fatalf("checks ran: %v, want only the size check", checkNames(rep))
			}
		})
	}
}
