package main

import (
	"io"
	"time"

	"github.com/schollz/progressbar/v3"
)

// progress is the line a long run keeps up to date on a terminal: done and
// total, images per second and the time left. A nil progress shows nothing.
type progress struct {
	bar *progressbar.ProgressBar
}

// progressThrottle bounds how often the line is redrawn.
const progressThrottle = 100 * time.Millisecond

func newProgress(w io.Writer, total int) *progress {
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription("classifying"),
		progressbar.OptionSetWidth(20),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("img"),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(progressThrottle),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetRenderBlankState(true),
	)}
}

func (p *progress) set(done int) {
	if p != nil {
		p.bar.Set(done)
	}
}

// clear erases the line so that a message can be printed; the next set
// draws it again.
func (p *progress) clear() {
	if p != nil {
		p.bar.Clear()
	}
}

func (p *progress) finish() {
	if p != nil {
		p.bar.Finish()
	}
}
