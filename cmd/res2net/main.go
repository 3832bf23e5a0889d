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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := execute(ctx, newSystemIO(), os.Args[1:])
	stop()
	os.Exit(code)
}

// execute runs the command line args and returns the process exit status:
// 0 on success, 1 when the work failed, 2 on a usage error, 130 when
// interrupted (what shells report for Ctrl-C).
func execute(ctx context.Context, io *ioStreams, args []string) int {
	root := newRootCmd(io)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		fmt.Fprintln(io.ErrOut, "res2net: interrupted")
		return 130
	}
	var silent *silentError
	if !errors.As(err, &silent) {
		fmt.Fprintf(io.ErrOut, "res2net: %v\n", err)
	}
	var usage *usageError
	if errors.As(err, &usage) {
		return 2
	}
	return 1
}
