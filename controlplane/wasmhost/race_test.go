//go:build race

package wasmhost

// raceDetector: wazero's compiler, itself instrumented, takes ~35 s for a
// 2.7 MB module under -race, so tests default to the interpreter there.
const raceDetector = true
