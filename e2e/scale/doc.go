// Package scale measures how wasmfleet behaves with a large fleet: how long
// a file dropped into the watched directory takes to reach a node, how long
// 1,000 or 10,000 nodes take to converge on a new version, and what each
// connected node costs the control plane in heap and CPU.
//
// The numbers come from Go benchmarks (bench_test.go) that run a whole
// control plane in-process on 127.0.0.1 with temporary directories. The
// fleet runs in a child process, a re-executed test binary (ChildMain), so
// the heap and CPU the benchmarks report belong to the control plane alone
// and not to the thousands of simulated nodes beside it.
//
// The pieces here are what those benchmarks need and nothing more:
//
//   - Variant makes a module with a new digest and unchanged behaviour, by
//     appending a custom section, so every iteration admits a module the
//     control plane has never seen (no admission cache hit).
//   - Probe is one ADS node that reports when an ECDS version carrying a
//     given module digest arrives: the outside view of "the snapshot is set".
//   - RemoteFleet runs a loadgen fleet in a child process and asks it when
//     every node accepted a version, and how much CPU it spent.
package scale
