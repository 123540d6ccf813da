// Command noabi is a valid WebAssembly module with no proxy-wasm ABI: a Go
// wasip1 program that exports nothing a proxy could call. Admission must
// refuse it.
package main

var answer int

func main() { answer = 42 }
