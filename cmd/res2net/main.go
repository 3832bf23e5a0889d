// Command res2net classifies images with the Res2Net-50 26w x 4s Imagenette
// checkpoint, matching PyTorch's answers from one static binary.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := execute(ctx, newSystemIO(), os.Args[1:])
	stop()
	os.Exit(code)
}

// execute runs the command line args and returns the process exit status:
// 0 on success, 1 when the work failed, 2 on a usage error.
func execute(ctx context.Context, io *ioStreams, args []string) int {
	root := newRootCmd(io)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
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
