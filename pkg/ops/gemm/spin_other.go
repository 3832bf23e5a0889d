//go:build !linux

package gemm

// runnableThreads is unknown outside Linux: workers always poll.
func runnableThreads() (int, bool) { return 0, false }
