//go:build !wasm

package sdk

import "github.com/proxy-wasm/proxy-wasm-go-sdk/proxywasm"

// writeLine writes an Entry's line through the proxy-wasm SDK's emulator.
// It copies the line: the emulator keeps the strings it is given (the log
// lines a test reads), and the Entry reuses its buffer for the next line.
func writeLine(level Level, b []byte) {
	line := string(b)
	switch level {
	case LevelDebug:
		proxywasm.LogDebug(line)
	case LevelInfo:
		proxywasm.LogInfo(line)
	case LevelWarn:
		proxywasm.LogWarn(line)
	default:
		proxywasm.LogError(line)
	}
}
