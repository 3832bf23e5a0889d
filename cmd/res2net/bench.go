package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/res2net/res2net/pkg/ops"
	"github.com/spf13/cobra"
)

type benchOptions struct {
	IO     *ioStreams
	Iters  int
	Warmup int
	Size   int
	Format string
	Quiet  bool
	Layers bool
	Model  modelFlags
	Run    runFlags
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
	f.IntVar(&opts.Iters, "iters", 20, "timed forward passes")
	f.IntVar(&opts.Warmup, "warmup", 3, "untimed forward passes first")
	f.IntVar(&opts.Size, "size", 224, "input height and width")
	f.BoolVar(&opts.Layers, "layers", false, "also time every conv and print the time per pass of each layer shape")
	addFormat(cmd, &opts.Format, benchFormats...)
	addQuiet(cmd, &opts.Quiet)
	opts.Model.addLoad(cmd)
	opts.Run.add(cmd, 1)
	return cmd
}

var benchFormats = []string{"text", "json"}

// benchResult is what bench reports; the JSON names are shared with
// scripts/bench_torch.py so the two can be compared.
type benchResult struct {
	MedianMS        float64      `json:"median_ms_per_image"`
	P90MS           float64      `json:"p90_ms_per_image"`
	ImagesPerSecond float64      `json:"images_per_second"`
	BatchSize       int          `json:"batch_size"`
	Threads         int          `json:"threads"`
	Layers          []benchLayer `json:"layers,omitempty"`
}

// benchLayer is the convs of one shape in a pass, with --layers: their
// median time per pass (summed over the goroutines of a batch run on
// several threads) and the arithmetic rate that makes.
type benchLayer struct {
	Layer     string  `json:"layer"`
	Convs     int     `json:"convs"`
	MedianMS  float64 `json:"median_ms_per_pass"`
	GFLOPPerS float64 `json:"gflop_per_second"`
}

func runBench(ctx context.Context, opts *benchOptions) error {
	switch {
	case opts.Iters < 1:
		return usageErrorf("--iters must be at least 1, got %d", opts.Iters)
	case opts.Warmup < 0:
		return usageErrorf("--warmup must not be negative, got %d", opts.Warmup)
	case opts.Size < 1:
		return usageErrorf("--size must be at least 1, got %d", opts.Size)
	}
	if err := checkFormat(opts.Format, benchFormats...); err != nil {
		return err
	}
	if err := opts.Run.validate(); err != nil {
		return err
	}
	opts.Model.Precision = opts.Run.precision()
	c, err := loadClassifier(ctx, opts.IO, &opts.Model, (&transformFlags{}).options, opts.Quiet)
	if err != nil {
		return err
	}
	batch, threads := opts.Run.BatchSize, opts.Run.threads()
	if err := checkMemory(c, batch, opts.Size, opts.Size, threads); err != nil {
		return err
	}
	r := c.Network().NewRunner()
	r.SetThreads(threads)
	var layers *layerProfile
	if opts.Layers {
		layers = newLayerProfile()
		r.ObserveConvs(layers.observe)
	}
	x := ops.New(batch, 3, opts.Size, opts.Size)
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
		if _, err := r.Forward(x); err != nil {
			return err
		}
		if i >= opts.Warmup {
			ms := float64(time.Since(start).Microseconds()) / 1e3
			perImage = append(perImage, ms/float64(batch))
		}
		if layers != nil {
			layers.endPass(i >= opts.Warmup)
		}
	}
	slices.Sort(perImage)
	median := percentile(perImage, 50)
	res := benchResult{
		MedianMS:        roundTo(median, msDecimals),
		P90MS:           roundTo(percentile(perImage, 90), msDecimals),
		ImagesPerSecond: roundTo(1000/median, rateDecimals),
		BatchSize:       batch,
		Threads:         threads,
	}
	if layers != nil {
		res.Layers = layers.report()
	}
	if opts.Format == "json" {
		return json.NewEncoder(opts.IO.Out).Encode(res)
	}
	if _, err := fmt.Fprintf(opts.IO.Out, "batch %d, threads %d, %d iterations: median %.2f ms/image, p90 %.2f ms/image, %.1f images/s\n",
		res.BatchSize, res.Threads, opts.Iters, res.MedianMS, res.P90MS, res.ImagesPerSecond); err != nil {
		return err
	}
	if len(res.Layers) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(w, "layer (median per pass)\tconvs\tms\tGFLOP/s\t\n")
	for _, l := range res.Layers {
		fmt.Fprintf(w, "%s\t%d\t%.3f\t%.1f\t\n", l.Layer, l.Convs, l.MedianMS, l.GFLOPPerS)
	}
	return w.Flush()
}

// layerProfile gathers bench --layers: the observed convs of each pass,
// summed by layer shape, in the order the shapes first ran.
type layerProfile struct {
	mu    sync.Mutex
	order []string
	rows  map[string]*layerRow
}

// layerRow is one layer shape of a layerProfile.
type layerRow struct {
	convs int           // in this pass so far
	macs  int64         // in this pass so far
	took  time.Duration // in this pass so far
	// perPass is the convs and MACs of a whole pass, times the ms of
	// each timed pass.
	perPass struct {
		convs int
		macs  int64
	}
	times []float64
}

func newLayerProfile() *layerProfile {
	return &layerProfile{rows: map[string]*layerRow{}}
}

// observe is the runner's conv observer; a batch on several threads
// calls it from several goroutines.
func (p *layerProfile) observe(c *ops.Conv2d, n, h, w int, took time.Duration) {
	key := fmt.Sprintf("conv %dx%d/%d %d->%d", c.Kernel, c.Kernel, c.Stride, c.InC, c.OutC)
	if c.Groups > 1 {
		key += fmt.Sprintf(" g%d", c.Groups)
	}
	key += fmt.Sprintf(" at %dx%d", h, w)
	p.mu.Lock()
	defer p.mu.Unlock()
	row := p.rows[key]
	if row == nil {
		row = &layerRow{}
		p.rows[key] = row
		p.order = append(p.order, key)
	}
	row.convs++
	row.macs += c.MACs(n, h, w)
	row.took += took
}

// endPass closes a pass, keeping its times if it was timed.
func (p *layerProfile) endPass(timed bool) {
	for _, row := range p.rows {
		if timed {
			row.times = append(row.times, float64(row.took.Microseconds())/1e3)
		}
		row.perPass.convs, row.perPass.macs = row.convs, row.macs
		row.convs, row.macs, row.took = 0, 0, 0
	}
}

// report returns the median time per pass of every layer shape.
func (p *layerProfile) report() []benchLayer {
	var out []benchLayer
	for _, key := range p.order {
		row := p.rows[key]
		slices.Sort(row.times)
		ms := percentile(row.times, 50)
		out = append(out, benchLayer{Layer: key, Convs: row.perPass.convs, MedianMS: roundTo(ms, msDecimals),
			GFLOPPerS: roundTo(2*float64(row.perPass.macs)/ms/1e6, rateDecimals)})
	}
	return out
}

// The decimals bench reports: times to the microsecond its clock reads,
// rates to a hundredth.
const (
	msDecimals   = 3
	rateDecimals = 2
)

// roundTo rounds v to the given number of decimals.
func roundTo(v float64, decimals int) float64 {
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
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
