package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"

	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/spf13/cobra"
)

type predictOptions struct {
	IO        *ioStreams
	Inputs    []string
	TopK      int
	Format    string // "" : from Output's extension, else text
	Output    string
	FilesFrom string
	Shard     string
	Resume    bool
	// LimitMemory tunes the garbage collector to the run's working set
	// (a soft memory limit, unless GOMEMLIMIT sets one). It acts on the
	// whole process, so the command sets it, not tests sharing a process.
	LimitMemory bool
	Net         netFlags
}

func newPredictCmd(io *ioStreams) *cobra.Command {
	opts := &predictOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "predict IMAGE...",
		Short: "Classify images",
		Long: `Classify image files, folders (searched recursively for images by extension,
following linked folders) and - (standard input). Results come in input
order. A file that cannot be classified is reported on stderr, and in JSON
and CSV output as a record with an error; the others are still classified
and the exit status is then 1.

Large jobs: -o writes the results to a file (replaced when the run ends),
--shard K/N takes every Nth input from the Kth (0 <= K < N), and --resume
skips the inputs already classified in -o's file.`,
		Example: `  res2net predict photo.jpg --topk 5
  res2net predict photos/ -o results.jsonl
  find photos -name '*.jpg' | res2net predict --files-from - --format csv
  res2net predict photos/ --shard 3/8 -o part-3.csv --resume
  cat photo.png | res2net predict -`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && opts.FilesFrom == "" {
				return usageErrorf("requires at least 1 image, folder or -, or --files-from")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs = args
			opts.LimitMemory = os.Getenv("GOMEMLIMIT") == ""
			return runPredict(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&opts.TopK, "topk", "k", 5, "number of classes to show per image")
	f.StringVarP(&opts.Format, "format", "f", "", "output format: text, json (a line per input) or csv (default: from -o's extension, else text)")
	completeValues(cmd, "format", predictFormats)
	f.StringVarP(&opts.Output, "output", "o", "", "write the results to this file instead of stdout")
	f.StringVar(&opts.FilesFrom, "files-from", "", "also classify the paths listed in this file, one a line (- for stdin)")
	f.StringVar(&opts.Shard, "shard", "", "classify only shard K of N: every Nth input from the Kth, 0 <= K < N")
	f.BoolVar(&opts.Resume, "resume", false, "with -o: keep the results already in the file and classify only the rest")
	opts.Net.add(cmd, defaultPredictBatch)
	return cmd
}

// defaultPredictBatch is predict's --batch-size: with 2 threads, two
// groups of 2 images in flight, about 70 MB of activations for the full-size
// network, which keeps a folder run under 250 MiB; batch 8 measured no
// faster and needs twice that.
const defaultPredictBatch = 4

// memoryHeadroom is what the soft memory limit allows above the network
// and its run buffers: the batch, decoded images and the collector's slack.
const memoryHeadroom = 32 << 20

// progressMin is the number of inputs from which a run on a terminal shows
// progress and a summary: fewer finish before either says anything.
const progressMin = 5

func (o *predictOptions) validate() error {
	if o.Format == "" {
		o.Format = "text"
		if o.Output != "" {
			o.Format = formatFromExt(o.Output)
		}
	}
	switch {
	case o.TopK < 1:
		return usageErrorf("--topk must be at least 1, got %d", o.TopK)
	case o.Resume && o.Output == "":
		return usageErrorf("--resume needs -o FILE, the results to resume")
	case o.Resume && o.Format == "text":
		return usageErrorf("--resume needs JSON or CSV output, not text")
	case o.FilesFrom == "-" && containsStdin(o.Inputs):
		return usageErrorf("--files-from - and the input - both read standard input")
	}
	if err := checkFormat(o.Format, predictFormats...); err != nil {
		return err
	}
	if _, _, err := parseShard(o.Shard); err != nil {
		return err
	}
	return o.Net.validate()
}

func containsStdin(args []string) bool {
	for _, a := range args {
		if a == "-" {
			return true
		}
	}
	return false
}

// parseShard reads --shard K/N; "" is the whole input, 0/1.
func parseShard(s string) (k, n int, err error) {
	if s == "" {
		return 0, 1, nil
	}
	ks, ns, ok := strings.Cut(s, "/")
	k, kerr := strconv.Atoi(ks)
	n, nerr := strconv.Atoi(ns)
	if !ok || kerr != nil || nerr != nil || n < 1 || k < 0 || k >= n {
		return 0, 0, usageErrorf("--shard must be K/N with 0 <= K < N, got %q", s)
	}
	return k, n, nil
}

// item is one input on its way through the pipeline.
type item struct {
	input
	x *ops.Tensor
}

func runPredict(ctx context.Context, opts *predictOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	args := opts.Inputs
	if opts.FilesFrom != "" {
		listed, err := readFilesFrom(ctx, opts.IO, opts.FilesFrom)
		if err != nil {
			return err
		}
		args = append(append([]string(nil), args...), listed...)
	}
	// Inputs are checked before anything is loaded or downloaded.
	inputs := expandInputs(args)
	k, n, _ := parseShard(opts.Shard)
	if n > 1 {
		var mine []input
		for i, in := range inputs {
			if i%n == k {
				mine = append(mine, in)
			}
		}
		inputs = mine
	}

	var dst io.Writer = opts.IO.Out
	var file *outputFile
	if opts.Output != "" {
		var err error
		if file, err = createOutput(opts.Output); err != nil {
			return err
		}
		dst = file
	}
	run := &predictRun{opts: opts, start: time.Now()}
	err := run.classify(ctx, inputs, dst, file)
	switch {
	case file == nil:
	case err != nil && run.done == 0 && !opts.Resume:
		// Nothing to keep (the checkpoint did not load, say): the file
		// from an earlier run stays as it was.
		file.discard()
	default:
		if cerr := file.commit(); err == nil {
			err = cerr
		}
	}
	run.summary()
	if err != nil {
		return err
	}
	if run.failed > 0 {
		return &silentError{fmt.Errorf("%d of the inputs could not be classified", run.failed)}
	}
	return nil
}

// readFilesFrom reads --files-from's list: standard input, or a file,
// which may be a pipe (--files-from <(find ...)); a signal ends the wait
// for a writer that does not finish.
func readFilesFrom(ctx context.Context, ios *ioStreams, name string) ([]string, error) {
	type list struct {
		paths []string
		err   error
	}
	done := make(chan list, 1)
	go func() {
		if name == "-" {
			paths, err := readFileList(ios.In, stdinName)
			done <- list{paths, err}
			return
		}
		f, err := os.Open(name)
		if err != nil {
			done <- list{nil, fmt.Errorf("--files-from %s: %w", name, unwrapPathError(err))}
			return
		}
		defer f.Close()
		paths, err := readFileList(f, name)
		done <- list{paths, err}
	}()
	select {
	case l := <-done:
		return l.paths, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// predictRun is one predict run's state: the counts its progress and
// summary show.
type predictRun struct {
	opts      *predictOptions
	start     time.Time
	progress  *progress
	done      int
	failed    int
	nonFinite bool // warned about NaN or Inf scores already
}

// classify runs inputs through the network and writes their records to dst.
func (p *predictRun) classify(ctx context.Context, inputs []input, dst io.Writer, file *outputFile) error {
	opts := p.opts
	var labels []string
	usable := 0
	for _, in := range inputs {
		if in.err == nil {
			usable++
		}
	}
	var c *classify.Classifier
	if usable > 0 {
		var err error
		c, err = opts.Net.classifier(ctx, opts.IO)
		if err != nil {
			return err
		}
		labels = c.Labels()
	}
	out := newRecordWriter(dst, opts.Format, opts.TopK, labels)
	defer out.flush()
	if err := out.header(); err != nil {
		return err
	}
	if opts.Resume {
		done, err := carryOver(opts.Output, out)
		if err != nil {
			return err
		}
		kept := inputs[:0:0]
		for _, in := range inputs {
			if !done[in.name] {
				kept = append(kept, in)
			}
		}
		if skipped := len(inputs) - len(kept); skipped > 0 && !opts.Net.Quiet {
			fmt.Fprintf(opts.IO.ErrOut, "res2net: resuming: %d of %d inputs already in %s\n", skipped, len(inputs), opts.Output)
		}
		inputs = kept
	}
	if opts.IO.ErrTTY && !opts.Net.Quiet && len(inputs) >= progressMin {
		p.progress = newProgress(opts.IO.ErrOut, len(inputs))
	}
	batch := min(opts.Net.Run.BatchSize, max(usable, 1))
	var r *classify.Runner
	if c != nil {
		shape := c.InputShape()
		if err := checkMemory(c, batch, shape[1], shape[2], opts.Net.Run.threads()); err != nil {
			return err
		}
		r = c.NewRunner(opts.Net.Run.threads())
	}

	// Decoding runs one batch ahead of the network, so the cores never wait
	// for image files; the channel bounds memory on long runs.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the decoder when an error ends the run early
	items := make(chan item, batch)
	go func() {
		defer close(items)
		for _, in := range inputs {
			it := item{input: in}
			if it.err == nil {
				it.x, it.err = decodeInput(opts.IO, c, in.name)
			}
			select {
			case items <- it:
			case <-ctx.Done():
				return
			}
		}
	}()

	pending := make([]item, 0, batch)
	good := 0
	largest := 0 // the largest batch run so far, whose run buffers are allocated
	flush := func() error {
		if err := p.emit(r, pending, out, file); err != nil {
			return err
		}
		if opts.LimitMemory && good > largest {
			// At most batch times, usually twice (a first image alone,
			// then a full batch).
			limitMemory()
			largest = good
		}
		pending, good = pending[:0], 0
		return nil
	}
	for {
		var it item
		var ok bool
		select {
		case it, ok = <-items:
		case <-ctx.Done():
			// Standard input may block the decoder for ever: do not wait.
			return ctx.Err()
		}
		if !ok {
			break
		}
		pending = append(pending, it)
		if it.err == nil {
			good++
		}
		// A full batch runs at once; so does a partial one when no decoded
		// image is waiting: the network would idle, and standard input or a
		// slow disk may keep the next one for long.
		if good == batch || good > 0 && len(items) == 0 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return flush()
}

// limitMemory sets the process's soft memory limit to what is live once
// a batch has run (the network's weights and the run buffers for its size)
// plus headroom.
// Without it the heap may grow to twice what is live before a collection
// (GOGC=100): about 500 MB for the full-size network, of which half is
// garbage from decoding. One forced collection measures what is live.
func limitMemory() {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(sample)
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return
	}
	debug.SetMemoryLimit(int64(sample[0].Value.Uint64()) + memoryHeadroom)
}

// decodeInput decodes one checked input: standard input as a stream, a
// file through openImage, which refuses anything but a regular file.
func decodeInput(ios *ioStreams, c *classify.Classifier, name string) (*ops.Tensor, error) {
	if name == stdinName {
		return c.Decode(ios.In, stdinName)
	}
	f, err := openImage(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return c.Decode(f, name)
}

// emit classifies the good items of a batch and writes every item's record
// in order.
func (p *predictRun) emit(r *classify.Runner, batch []item, out *recordWriter, file *outputFile) error {
	var images []*ops.Tensor
	for _, it := range batch {
		if it.err == nil {
			images = append(images, it.x)
		}
	}
	var preds [][]classify.Prediction
	if len(images) > 0 {
		var err error
		if preds, err = r.Classify(images, p.opts.TopK); err != nil {
			return err
		}
	}
	for _, it := range batch {
		var rec classify.Record
		if it.err != nil {
			rec = classify.Failed(it.name, it.err)
			p.failed++
			p.progress.clear()
			fmt.Fprintf(p.opts.IO.ErrOut, "res2net: %v\n", it.err)
		} else {
			rec = classify.Record{File: it.name, Predictions: preds[0]}
			preds = preds[1:]
			if !rec.Finite() && !p.nonFinite {
				p.nonFinite = true
				p.progress.clear()
				fmt.Fprintf(p.opts.IO.ErrOut, "res2net: warning: %s: scores are not finite (NaN or Inf; null in JSON): the weights may be damaged\n", it.name)
			}
		}
		if err := out.write(rec); err != nil {
			return writeError(p.opts, err)
		}
		p.done++
		p.progress.set(p.done)
	}
	if err := out.flush(); err != nil {
		return writeError(p.opts, err)
	}
	return nil
}

func writeError(opts *predictOptions, err error) error {
	if opts.Output != "" {
		return fmt.Errorf("-o %s: %w", opts.Output, err)
	}
	return fmt.Errorf("writing results: %w", err)
}

// summary ends a run that showed progress with its counts and time.
func (p *predictRun) summary() {
	if p.progress == nil {
		return
	}
	p.progress.finish()
	fmt.Fprintf(p.opts.IO.ErrOut, "%d classified, %d failed, %.1f s\n", p.done-p.failed, p.failed, time.Since(p.start).Seconds())
}
