package download

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// rateWatch cancels an attempt that receives nothing, or less than a
// minimum rate, within a window. It counts bytes and checks the count once
// per window, so a trickle of single bytes cannot keep the attempt alive
// the way resetting a timer on every read would.
type rateWatch struct {
	window time.Duration
	min    int64 // bytes per window; 0 accepts any rate above nothing
	rate   int64 // bytes per second, for the message
	cancel context.CancelCauseFunc
	got    atomic.Int64 // bytes in the current window

	mu    sync.Mutex
	timer *time.Timer
}

// newRateWatch starts watching; cancel receives errStalled or a wrapped
// errTooSlow.
func newRateWatch(window time.Duration, bytesPerSecond int64, cancel context.CancelCauseFunc) *rateWatch {
	w := &rateWatch{window: window, rate: max(bytesPerSecond, 0), cancel: cancel}
	w.min = int64(float64(w.rate) * window.Seconds())
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer = time.AfterFunc(window, w.check)
	return w
}

// add counts n bytes received.
func (w *rateWatch) add(n int) { w.got.Add(int64(n)) }

// check ends a window: it cancels the attempt or starts the next window.
func (w *rateWatch) check() {
	got := w.got.Swap(0)
	switch {
	case got == 0:
		w.cancel(errStalled)
	case got < w.min:
		w.cancel(fmt.Errorf("%w: %d bytes in %v, under the minimum of %d bytes/s", errTooSlow, got, w.window, w.rate))
	default:
		w.mu.Lock()
		w.timer.Reset(w.window)
		w.mu.Unlock()
	}
}

// stop ends the watch.
func (w *rateWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.timer.Stop()
}
