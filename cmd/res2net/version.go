package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/res2net/res2net/pkg/ops/gemm"

	"github.com/spf13/cobra"
)

// version is set at build time with -ldflags "-X main.version=...";
// otherwise the module version from the build info is shown.
var version = ""

type versionOptions struct {
	IO *ioStreams
}

func newVersionCmd(io *ioStreams) *cobra.Command {
	opts := &versionOptions{IO: io}
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runVersion(opts)
		},
	}
}

func runVersion(opts *versionOptions) error {
	_, err := fmt.Fprintln(opts.IO.Out, versionLine())
	return err
}

// versionLine is what version and --version print.
func versionLine() string {
	v := version
	if v == "" {
		v = "(devel)"
		if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
			v = info.Main.Version
		}
	}
	return fmt.Sprintf("res2net %s (%s, %s/%s, %s GEMM kernel)", v, runtime.Version(), runtime.GOOS, runtime.GOARCH, gemm.Kernel())
}
