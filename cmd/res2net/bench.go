package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/res2net/res2net/pkg/ops"
	"github.com/spf13/cobra"
)

type benchOptions struct {
	IO        *ioStreams
	Weights   string
	Iters     int
	Warmup    int
	BatchSize int
	Threads   int
	Size      int
	Format    string
	Offline   bool
	Quiet     bool
}

func newBenchCmd(io *ioStreams) *cobra.Command {
	opts := &benchOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Time the forward pass",
		Long: `Time the forward pass on the loaded weights with a random input, and print the
median and 90th percentile time per image and the throughput.`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBench(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Weights, "weights", "w", "", "checkpoint file (default: the cached published checkpoint)")
	f.IntVar(&opts.Iters, "iters", 20, "timed forward passes")
	f.IntVar(&opts.Warmup, "warmup", 3, "untimed forward passes first")
	f.IntVarP(&opts.BatchSize, "batch-size", "b", 1, "images per forward pass")
	f.IntVarP(&opts.Threads, "threads", "t", runtime.NumCPU(), "CPU threads")
	f.IntVar(&opts.Size, "size", 224, "input height and width")
	f.StringVarP(&opts.Format, "format", "f", "text", "output format: text or json")
	f.BoolVar(&opts.Offline, "offline", false, "never download; fail if the checkpoint is not cached")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "no download notice or progress bar")
	return cmd
}

// benchResult is what bench reports; the JSON names are shared with
// scripts/bench_torch.py so the two can be compared.
type benchResult struct {
	MedianMS        float64 `json:"median_ms_per_image"`
	P90MS           float64 `json:"p90_ms_per_image"`
	ImagesPerSecond float64 `json:"images_per_second"`
	BatchSize       int     `json:"batch_size"`
	Threads         int     `json:"threads"`
}

func runBench(ctx context.Context, opts *benchOptions) error {
	switch {
	case opts.Iters < 1:
		return usageErrorf("--iters must be at least 1, got %d", opts.Iters)
	case opts.Warmup < 0:
		return usageErrorf("--warmup must not be negative, got %d", opts.Warmup)
	case opts.BatchSize < 1:
		return usageErrorf("--batch-size must be at least 1, got %d", opts.BatchSize)
	case opts.Threads < 1:
		return usageErrorf("--threads must be at least 1, got %d", opts.Threads)
	case opts.Size < 1:
		return usageErrorf("--size must be at least 1, got %d", opts.Size)
	case opts.Format != "text" && opts.Format != "json":
		return usageErrorf("--format must be text or json, got %q", opts.Format)
	}
	net, err := loadNetwork(ctx, opts.IO, opts.Weights, opts.Offline, opts.Quiet)
	if err != nil {
		return err
	}
	net.Model.SetThreads(opts.Threads)
	x := ops.New(opts.BatchSize, 3, opts.Size, opts.Size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	perImage := make([]float64, 0, opts.Iters)
	for i := 0; i < opts.Warmup+opts.Iters; i++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		if _, err := net.Model.Forward(x); err != nil {
			return err
		}
		if i >= opts.Warmup {
			ms := float64(time.Since(start).Microseconds()) / 1e3
			perImage = append(perImage, ms/float64(opts.BatchSize))
		}
	}
	slices.Sort(perImage)
	res := benchResult{
		MedianMS:  percentile(perImage, 50),
		P90MS:     percentile(perImage, 90),
		BatchSize: opts.BatchSize,
		Threads:   opts.Threads,
	}
	res.ImagesPerSecond = 1000 / res.MedianMS
	if opts.Format == "json" {
		return json.NewEncoder(opts.IO.Out).Encode(res)
	}
	_, err = fmt.Fprintf(opts.IO.Out, "batch %d, threads %d, %d iterations: median %.2f ms/image, p90 %.2f ms/image, %.1f images/s\n",
		res.BatchSize, res.Threads, opts.Iters, res.MedianMS, res.P90MS, res.ImagesPerSecond)
	return err
}

// percentile returns the p-th percentile of sorted values, interpolating
// linearly between ranks as numpy.percentile does.
func percentile(sorted []float64, p float64) float64 {
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(pos)
	if lo+1 >= len(sorted) {
		return sorted[len(sorted)-1]
	}
	frac := pos - float64(lo)
	return sorted[lo]*(1-frac) + sorted[lo+1]*frac
}
