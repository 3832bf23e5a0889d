package gemm

import (
	"bytes"
	"os"
	"strconv"
)

// runnableThreads returns the number of threads running or ready to run
// on the machine, the fourth field of /proc/loadavg ("runnable/total"),
// which counts the caller too.
func runnableThreads() (int, bool) {
	raw, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0, false
	}
	return parseRunnable(raw)
}

// parseRunnable reads the runnable count from /proc/loadavg's contents,
// such as "0.52 0.58 0.59 3/467 12345".
func parseRunnable(raw []byte) (int, bool) {
	fields := bytes.Fields(raw)
	if len(fields) < 4 {
		return 0, false
	}
	num, _, ok := bytes.Cut(fields[3], []byte("/"))
	if !ok {
		return 0, false
	}
	n, err := strconv.Atoi(string(num))
	return n, err == nil
}
