// Command res2net classifies images with the Res2Net-50 26w x 4s Imagenette
// checkpoint, matching PyTorch's answers from one static binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := notifySignals(context.Background())
	code := execute(ctx, newSystemIO(), os.Args[1:])
	stop()
	os.Exit(code)
}

// signalError is the cause of a run cancelled by a signal.
type signalError struct{ sig syscall.Signal }

func (e *signalError) Error() string { return "interrupted by " + e.sig.String() }

// notifySignals returns a context cancelled, with a *signalError cause, on
// the first SIGINT or SIGTERM. A second one kills the process at once, as
// if res2net did not catch them.
func notifySignals(parent context.Context) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		select {
		case s := <-sigs:
			signal.Stop(sigs)
			cancel(&signalError{s.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	return ctx, func() { signal.Stop(sigs); cancel(nil) }
}

// Exit statuses besides 0 (success): what shells report for a process
// killed by a signal is 128 plus its number.
const (
	exitFailure = 1
	exitUsage   = 2
	exitSignal  = 128
)

// execute runs the command line args and returns the process exit status:
// 0 on success, 1 when the work failed, 2 on a usage error, 130 when
// interrupted (SIGINT, what shells report for Ctrl-C) and 143 when
// terminated (SIGTERM).
func execute(ctx context.Context, io *ioStreams, args []string) int {
	root := newRootCmd(io)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		sig := syscall.SIGINT
		var se *signalError
		if errors.As(context.Cause(ctx), &se) {
			sig = se.sig
		}
		fmt.Fprintf(io.ErrOut, "res2net: %s\n", interruptMessage(sig))
		return exitSignal + int(sig)
	}
	var silent *silentError
	if !errors.As(err, &silent) {
		fmt.Fprintf(io.ErrOut, "res2net: %v\n", err)
	}
	var usage *usageError
	if errors.As(err, &usage) {
		return exitUsage
	}
	return exitFailure
}

func interruptMessage(sig syscall.Signal) string {
	if sig == syscall.SIGTERM {
		return "terminated"
	}
	return "interrupted"
}
