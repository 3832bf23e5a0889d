package gemm

import (
	"runtime"
	"sync/atomic"
	"time"
)

// loadCheckEvery is how long a reading of the machine's load stays valid.
const loadCheckEvery = 10 * time.Millisecond

// load caches the last reading of runnableThreads.
var load struct {
	at   atomic.Int64 // time of the reading, UnixNano; 0 for none
	busy atomic.Bool
}

// oversubscribed reports whether more threads are ready to run on the
// machine than it has CPUs, the last time it looked (at most
// loadCheckEvery ago). It is false where that cannot be read.
func oversubscribed() bool {
	now := time.Now().UnixNano()
	if at := load.at.Load(); at != 0 && now-at < int64(loadCheckEvery) {
		return load.busy.Load()
	}
	n, ok := runnableThreads()
	load.busy.Store(ok && n > runtime.NumCPU())
	load.at.Store(now)
	return load.busy.Load()
}
