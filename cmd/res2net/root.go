package main

import (
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// ioStreams are the standard streams a command reads and writes, so tests
// can run commands against buffers.
type ioStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// ErrTTY reports whether ErrOut is a terminal, where progress bars go.
	ErrTTY bool
}

func newSystemIO() *ioStreams {
	return &ioStreams{
		In:     os.Stdin,
		Out:    os.Stdout,
		ErrOut: os.Stderr,
		ErrTTY: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

// usageError marks a command line the user got wrong (exit status 2).
type usageError struct{ err error }

func (e *usageError) Error() string { return e.err.Error() }
func (e *usageError) Unwrap() error { return e.err }

// silentError is a failure already reported to the user (exit status 1).
type silentError struct{ err error }

func (e *silentError) Error() string { return e.err.Error() }
func (e *silentError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{fmt.Errorf(format, a...)}
}

func newRootCmd(io *ioStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "res2net",
		Short: "Classify images with Res2Net-50 26w x 4s (Imagenette)",
		Long: `res2net runs the published Res2Net-50 26w x 4s Imagenette checkpoint on the CPU
and gives the same answers as PyTorch.

  res2net fetch                        download and verify the checkpoint
  res2net predict photo.jpg --topk 5   classify images
  res2net inspect                      show every layer, its shape, parameters and cost`,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Args and RunE make the root runnable, so cobra reports an
		// unknown command as an argument error instead of printing help.
		Args:    unknownCommand,
		RunE:    func(cmd *cobra.Command, args []string) error { return cmd.Help() },
		Version: versionLine(),
		// "predcit" is two edits from "predict".
		SuggestionsMinimumDistance: 2,
	}
	root.SetVersionTemplate("{{.Version}}\n")
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{fmt.Errorf("%w\nRun '%s --help' for usage.", err, cmd.CommandPath())}
	})
	root.AddCommand(
		newFetchCmd(io),
		newModelsCmd(io),
		newPredictCmd(io),
		newInspectCmd(io),
		newBenchCmd(io),
		newServeCmd(io),
		newExplainCmd(io),
		newEmbedCmd(io),
		newTrainHeadCmd(io),
		newVersionCmd(io),
	)
	initCompletionCmd(root)
	return root
}

// unknownCommand is the root's argument check: any argument is a command
// that does not exist, with the nearest names as suggestions.
func unknownCommand(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "\n\nDid you mean this?\n\t" + strings.Join(s, "\n\t")
	}
	return usageErrorf("%s\nRun '%s --help' for usage.", msg, cmd.CommandPath())
}

// initCompletionCmd adds cobra's completion command now, to make an
// unknown shell (completion tcsh) a usage error: cobra's own prints help
// and succeeds.
func initCompletionCmd(root *cobra.Command) {
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() != "completion" {
			continue
		}
		shells := make([]string, 0, len(c.Commands()))
		for _, sub := range c.Commands() {
			shells = append(shells, sub.Name())
		}
		c.Args = func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("completion: unsupported shell %q (supported: %s)", args[0], strings.Join(shells, ", "))
			}
			return nil
		}
		c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
	}
}

// argsUsage wraps a cobra positional-argument validator so that its errors
// count as usage errors.
func argsUsage(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return &usageError{err}
		}
		return nil
	}
}
