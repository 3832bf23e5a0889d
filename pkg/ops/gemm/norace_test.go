//go:build !race

package gemm

// raceEnabled is set when the race detector is on: it slows the Go code
// (reference, packing) by an order of magnitude and makes sync.Pool drop
// values at random.
const raceEnabled = false
