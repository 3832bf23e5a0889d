package main

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/spf13/cobra"
)

type predictOptions struct {
	IO        *ioStreams
	Inputs    []string
	TopK      int
	Weights   string
	Format    string
	BatchSize int
	Threads   int
	Offline   bool
	Quiet     bool
	NoOrient  bool
	MaxPixels int64
}

func newPredictCmd(io *ioStreams) *cobra.Command {
	opts := &predictOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "predict IMAGE...",
		Short: "Classify images",
		Long: `Classify image files, folders (searched recursively for images by extension)
and - (standard input). Results come in input order. A file that cannot be
classified is reported on stderr and the others still are; the exit status
is then 1.`,
		Example: `  res2net predict photo.jpg --topk 5
  res2net predict photos/ --format json > results.jsonl
  cat photo.png | res2net predict -`,
		Args: argsUsage(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs = args
			return runPredict(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.IntVarP(&opts.TopK, "topk", "k", 5, "number of classes to show per image")
	f.StringVarP(&opts.Weights, "weights", "w", "", "checkpoint file (default: the cached published checkpoint)")
	f.StringVarP(&opts.Format, "format", "f", "text", "output format: text, json or csv")
	f.IntVarP(&opts.BatchSize, "batch-size", "b", 8, "images per forward pass")
	f.IntVarP(&opts.Threads, "threads", "t", runtime.NumCPU(), "CPU threads")
	f.BoolVar(&opts.Offline, "offline", false, "never download; fail if the checkpoint is not cached")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "no download notice or progress bar")
	f.BoolVar(&opts.NoOrient, "no-orient", false, "ignore EXIF orientation")
	f.Int64Var(&opts.MaxPixels, "max-pixels", preprocess.DefaultOptions().MaxPixels, "refuse images with more pixels than this")
	return cmd
}

// prediction is one class of one image's result.
type prediction struct {
	Rank        int     `json:"rank"`
	Index       int     `json:"index"`
	Label       string  `json:"label"`
	Probability float32 `json:"probability"` // float32, as computed: JSON prints it short
	Logit       float32 `json:"logit"`
}

// result is the outcome for one input, in input order.
type result struct {
	File        string       `json:"file"`
	Predictions []prediction `json:"predictions"`
	err         error
	input       *ops.Tensor
}

func (o *predictOptions) validate() error {
	switch {
	case o.TopK < 1:
		return usageErrorf("--topk must be at least 1, got %d", o.TopK)
	case o.BatchSize < 1:
		return usageErrorf("--batch-size must be at least 1, got %d", o.BatchSize)
	case o.Threads < 1:
		return usageErrorf("--threads must be at least 1, got %d", o.Threads)
	case o.MaxPixels < 1:
		return usageErrorf("--max-pixels must be at least 1, got %d", o.MaxPixels)
	}
	switch o.Format {
	case "text", "json", "csv":
	default:
		return usageErrorf("--format must be text, json or csv, got %q", o.Format)
	}
	return nil
}

func runPredict(ctx context.Context, opts *predictOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	// Cancelling on return stops the decoder goroutine when an error ends
	// the run early.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	net, err := loadNetwork(ctx, opts.IO, opts.Weights, opts.Offline, opts.Quiet)
	if err != nil {
		return err
	}
	net.Model.SetThreads(opts.Threads)

	pre := preprocess.DefaultOptions()
	pre.Orient = !opts.NoOrient
	pre.MaxPixels = opts.MaxPixels

	// Decoding runs one batch ahead of the network, so the cores never wait
	// for image files; the channel bounds memory on long runs.
	inputs := make(chan *result, opts.BatchSize)
	go func() {
		defer close(inputs)
		for _, name := range expandInputs(opts.Inputs) {
			r := &result{File: name.path, err: name.err}
			if r.err == nil {
				r.input, r.err = loadImage(opts.IO, name.path, pre)
			}
			select {
			case inputs <- r:
			case <-ctx.Done():
				return
			}
		}
	}()

	out := newPrinter(opts.IO.Out, opts.Format)
	failed := 0
	batch := make([]*result, 0, opts.BatchSize)
	var scratch []float32 // the batch tensor's memory, reused across batches
	flush := func() error {
		if err := classify(net, batch, opts.TopK, &scratch); err != nil {
			return err
		}
		for _, r := range batch {
			if r.err != nil {
				failed++
				fmt.Fprintf(opts.IO.ErrOut, "res2net: %v\n", r.err)
				continue
			}
			if err := out.print(r); err != nil {
				return err
			}
		}
		batch = batch[:0]
		return nil
	}
	good := 0
	for r := range inputs {
		batch = append(batch, r)
		if r.err == nil {
			good++
		}
		if good == opts.BatchSize {
			if err := flush(); err != nil {
				return err
			}
			good = 0
		}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := flush(); err != nil {
		return err
	}
	if err := out.close(); err != nil {
		return err
	}
	if failed > 0 {
		return &silentError{fmt.Errorf("%d of the inputs could not be classified", failed)}
	}
	return nil
}

// classify runs the good images of batch through the network and fills in
// their predictions. The input batch is assembled in *scratch, grown as
// needed.
func classify(net *network, batch []*result, topk int, scratch *[]float32) error {
	var good []*result
	for _, r := range batch {
		if r.err == nil {
			good = append(good, r)
		}
	}
	if len(good) == 0 {
		return nil
	}
	shape := good[0].input.Shape
	per := ops.NumElements(shape)
	if cap(*scratch) < len(good)*per {
		*scratch = make([]float32, len(good)*per)
	}
	x := &ops.Tensor{Shape: append([]int{len(good)}, shape...), Data: (*scratch)[:len(good)*per]}
	for i, r := range good {
		copy(x.Data[i*per:], r.input.Data)
		r.input = nil
	}
	logits, err := net.Model.Forward(x)
	if err != nil {
		return err
	}
	classes := logits.Shape[1]
	probs := ops.Softmax(logits)
	for i, r := range good {
		row := logits.Data[i*classes : (i+1)*classes]
		p := probs.Data[i*classes : (i+1)*classes]
		for rank, idx := range ops.TopK(p, topk) {
			r.Predictions = append(r.Predictions, prediction{
				Rank:        rank + 1,
				Index:       idx,
				Label:       net.Labels[idx],
				Probability: p[idx],
				Logit:       row[idx],
			})
		}
	}
	return nil
}

// input is one image to classify, or the reason a command-line argument
// could not be expanded into images.
type input struct {
	path string
	err  error
}

// expandInputs turns the arguments into image paths in order: files as
// given, folders walked in lexical order keeping files with an image
// extension, and "-" for standard input.
func expandInputs(args []string) []input {
	var out []input
	for _, arg := range args {
		if arg == "-" {
			out = append(out, input{path: arg})
			continue
		}
		// Anything but a folder (after links) is an image however it is
		// named; a missing file gets its error from the decoder.
		if fi, err := os.Stat(arg); err != nil || !fi.IsDir() {
			out = append(out, input{path: arg})
			continue
		}
		// WalkDir does not follow a link at the root: walk the folder it names.
		root, err := filepath.EvalSymlinks(arg)
		if err != nil {
			out = append(out, input{path: arg, err: err})
			continue
		}
		found := false
		err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			p = filepath.Join(arg, strings.TrimPrefix(p, root))
			if !d.IsDir() && preprocess.IsImageFile(p) {
				out = append(out, input{path: p})
				found = true
			}
			return nil
		})
		switch {
		case err != nil:
			out = append(out, input{path: arg, err: err})
		case !found:
			out = append(out, input{path: arg, err: fmt.Errorf("%s: no image files in folder", arg)})
		}
	}
	return out
}

func loadImage(ios *ioStreams, path string, opts preprocess.Options) (*ops.Tensor, error) {
	if path == "-" {
		return preprocess.Read(ios.In, "<stdin>", opts)
	}
	return preprocess.Load(path, opts)
}

// printer writes results in one of the output formats.
type printer struct {
	w      io.Writer
	format string
	csv    *csv.Writer
	enc    *json.Encoder
}

func newPrinter(w io.Writer, format string) *printer {
	p := &printer{w: w, format: format}
	switch format {
	case "csv":
		p.csv = csv.NewWriter(w)
		p.csv.Write([]string{"file", "rank", "index", "label", "probability", "logit"})
	case "json":
		p.enc = json.NewEncoder(w)
	}
	return p
}

func (p *printer) print(r *result) error {
	switch p.format {
	case "json":
		return p.enc.Encode(r)
	case "csv":
		for _, pr := range r.Predictions {
			p.csv.Write([]string{r.File, strconv.Itoa(pr.Rank), strconv.Itoa(pr.Index), pr.Label,
				strconv.FormatFloat(float64(pr.Probability), 'g', -1, 32), strconv.FormatFloat(float64(pr.Logit), 'g', -1, 32)})
		}
		p.csv.Flush()
		return p.csv.Error()
	}
	if _, err := fmt.Fprintln(p.w, r.File); err != nil {
		return err
	}
	for _, pr := range r.Predictions {
		if _, err := fmt.Fprintf(p.w, "  %d  %-17s %6.2f%%\n", pr.Rank, pr.Label, 100*pr.Probability); err != nil {
			return err
		}
	}
	return nil
}

func (p *printer) close() error {
	if p.csv != nil {
		p.csv.Flush()
		return p.csv.Error()
	}
	return nil
}
