package main

import (
	"fmt"
	"runtime"
	"slices"
	"strings"

	"github.com/res2net/res2net/pkg/ops/gemm"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/res2net/res2net/pkg/registry"
	"github.com/spf13/cobra"
)

// The zero value of each flag struct is its flags' defaults, so that tests
// and other commands can fill in only what they change.

// modelFlags choose the network a command runs: a published model by name,
// or a checkpoint file, with its labels.
type modelFlags struct {
	Model   string
	Weights string
	Labels  string
	Offline bool
	// Precision is the arithmetic the network is packed for; commands
	// copy it from --precision (runFlags.precision) before loading.
	Precision gemm.Precision
	// Entry, when not nil, is the model itself in place of --model's
	// registry entry (tests publish a checkpoint on a local server).
	Entry *registry.Entry
}

// addModel registers --model and --weights.
func (m *modelFlags) addModel(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&m.Model, "model", "", "published model: its architecture, transform and labels (default "+registry.Default.Name+"; with --weights, the one of the file's architecture)")
	f.StringVarP(&m.Weights, "weights", "w", "", "checkpoint file (default: the model's cached published checkpoint)")
	completeValues(cmd, "model", modelNames())
}

// addLoad registers, besides addModel's flags, --labels and --offline, for
// the commands that load the weights to run them.
func (m *modelFlags) addLoad(cmd *cobra.Command) {
	m.addModel(cmd)
	f := cmd.Flags()
	f.StringVar(&m.Labels, "labels", "", "file of class names, one a line, in logit order (default: the model's)")
	f.BoolVar(&m.Offline, "offline", false, "never download; fail if the checkpoint is not cached")
}

// entry returns the registry entry --model names, or Entry when set.
func (m *modelFlags) entry() (registry.Entry, error) {
	if m.Entry != nil {
		return *m.Entry, nil
	}
	return lookupModel(m.Model)
}

// named reports whether the model is named (--model or Entry) rather than
// left for the --weights file's architecture to tell.
func (m *modelFlags) named() bool { return m.Model != "" || m.Entry != nil }

func modelNames() []string { return registry.Names() }

// runFlags say how a command runs the network.
type runFlags struct {
	Threads   int
	BatchSize int
	Precision string
}

// precisions are the --precision values.
var precisions = []string{gemm.FP32.String(), gemm.BF16.String()}

// add registers --threads and --precision, and --batch-size with the
// command's default.
func (r *runFlags) add(cmd *cobra.Command, batch int) {
	f := cmd.Flags()
	f.IntVarP(&r.Threads, "threads", "t", 0, "CPU threads (0: all CPUs)")
	f.IntVarP(&r.BatchSize, "batch-size", "b", batch, "images per forward pass")
	f.StringVar(&r.Precision, "precision", "fp32", "arithmetic of the forward pass: "+strings.Join(precisions, ", "))
	completeValues(cmd, "precision", precisions)
}

func (r *runFlags) validate() error {
	switch {
	case r.Threads < 0:
		return usageErrorf("--threads must be at least 0 (0: all CPUs), got %d", r.Threads)
	case r.BatchSize < 1:
		return usageErrorf("--batch-size must be at least 1, got %d", r.BatchSize)
	case r.Precision != "" && !slices.Contains(precisions, r.Precision):
		// gemm.ParsePrecision's message names the flag less clearly.
		return usageErrorf("--precision must be %s, got %q", strings.Join(precisions, " or "), r.Precision)
	}
	return nil
}

// precision is --precision's value ("": fp32).
func (r *runFlags) precision() gemm.Precision {
	p, err := gemm.ParsePrecision(r.Precision)
	if err != nil {
		return gemm.FP32 // "" or refused by validate
	}
	return p
}

// threads is the thread count to run with: --threads, or all CPUs for 0.
func (r *runFlags) threads() int {
	if r.Threads == 0 {
		return runtime.NumCPU()
	}
	return r.Threads
}

// transformFlags override the model's evaluation transform.
type transformFlags struct {
	Resize    int
	Crop      int
	NoOrient  bool
	MaxPixels int64
}

func (t *transformFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.IntVar(&t.Resize, "resize", 0, "resize the shorter side to this before cropping (0: the model's)")
	f.IntVar(&t.Crop, "crop", 0, "side of the centre crop (0: the model's)")
	f.BoolVar(&t.NoOrient, "no-orient", false, "ignore EXIF orientation (PyTorch's Image.open ignores it)")
	f.Int64Var(&t.MaxPixels, "max-pixels", preprocess.DefaultOptions().MaxPixels, "refuse images with more pixels than this")
}

func (t *transformFlags) validate() error {
	switch {
	case t.Resize < 0:
		return usageErrorf("--resize must be at least 1 (0: the model's), got %d", t.Resize)
	case t.Crop < 0:
		return usageErrorf("--crop must be at least 1 (0: the model's), got %d", t.Crop)
	case t.MaxPixels < 0:
		return usageErrorf("--max-pixels must be at least 1 (0: the default), got %d", t.MaxPixels)
	}
	sizes := preprocess.HolocronTransform()
	sizes.Resize, sizes.Crop = t.Resize, t.Crop
	if err := sizes.Validate(); err != nil {
		return usageErrorf("--resize/--crop: %v", err)
	}
	return nil
}

// options returns the model's transform with the flags applied.
func (t *transformFlags) options(e registry.Entry) preprocess.Options {
	o := preprocess.DefaultOptions()
	o.Resize, o.Crop, o.Mean, o.Std = e.Resize, e.Crop, e.Mean, e.Std
	if t.Resize > 0 {
		o.Resize = t.Resize
	}
	if t.Crop > 0 {
		o.Crop = t.Crop
	}
	o.Orient = !t.NoOrient
	if t.MaxPixels > 0 {
		o.MaxPixels = t.MaxPixels
	}
	return o
}

// addQuiet registers --quiet.
func addQuiet(cmd *cobra.Command, quiet *bool) {
	cmd.Flags().BoolVarP(quiet, "quiet", "q", false, "no download notice, progress or summary")
}

// addFormat registers --format with its allowed values, the first the default.
func addFormat(cmd *cobra.Command, format *string, values ...string) {
	cmd.Flags().StringVarP(format, "format", "f", values[0], "output format: "+strings.Join(values, ", "))
	completeValues(cmd, "format", values)
}

// checkFormat is the usage error for a --format outside values.
func checkFormat(format string, values ...string) error {
	if !slices.Contains(values, format) {
		return usageErrorf("--format must be %s, got %q", strings.Join(values, ", "), format)
	}
	return nil
}

// completeValues makes the shell complete flag from a fixed list.
func completeValues(cmd *cobra.Command, flag string, values []string) {
	err := cmd.RegisterFlagCompletionFunc(flag, func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return values, cobra.ShellCompDirectiveNoFileComp
	})
	if err != nil {
		panic(fmt.Sprintf("completion for --%s: %v", flag, err)) // a programming error: the flag is registered above
	}
}
