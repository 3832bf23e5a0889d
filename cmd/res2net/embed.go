package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/embedding"
	"github.com/spf13/cobra"
)

type embedOptions struct {
	IO        *ioStreams
	Inputs    []string
	Output    string // .npy, .jsonl or .csv; "" for standard output
	Format    string // standard output: jsonl or csv; --similar: text or json
	Normalize bool
	Similar   string // query image: list the nearest inputs instead
	TopK      int
	Net       netFlags
}

func newEmbedCmd(io *ioStreams) *cobra.Command {
	opts := &embedOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "embed IMAGE...",
		Short: "Write each image's pooled features, or find the images most like one",
		Long: `Write the pooled features the classifier sees (2048 values for Res2Net-50),
one row per image in input order, float32. The format follows -o's
extension: .npy (N x D, with the file list in a .txt beside it), .jsonl
({"file": ..., "embedding": [...]} per line) or .csv; without -o, JSON
Lines (or --format csv) go to standard output. --normalize scales each row
to unit length. Folders, "-", progress and errors work as for predict: a
file that cannot be embedded is named on stderr and, in JSON Lines and
CSV, recorded with its error.

With --similar QUERY, embed QUERY and the inputs and list the --topk inputs
most similar to it by cosine similarity instead.`,
		Example: `  res2net embed photos/ -o features.npy      # and features.txt
  res2net embed photo.jpg --normalize > photo.jsonl
  res2net embed --similar query.jpg photos/ --topk 3`,
		Args: argsUsage(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs = args
			return runEmbed(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Output, "output", "o", "", "output file: .npy, .jsonl or .csv (default: standard output)")
	f.StringVarP(&opts.Format, "format", "f", "", "standard output format: jsonl (default) or csv; with --similar: text (default) or json")
	f.BoolVar(&opts.Normalize, "normalize", false, "scale each embedding to unit length")
	f.StringVar(&opts.Similar, "similar", "", "query image: list the inputs most similar to it")
	f.IntVarP(&opts.TopK, "topk", "k", 5, "with --similar: number of images to list")
	opts.Net.add(cmd, defaultFeatureBatch)
	return cmd
}

func (o *embedOptions) validate() error {
	if err := o.Net.validate(); err != nil {
		return err
	}
	if o.Similar != "" {
		if o.TopK < 1 {
			return usageErrorf("--topk must be at least 1, got %d", o.TopK)
		}
		if o.Format != "" && o.Format != "text" && o.Format != "json" {
			return usageErrorf("with --similar, --format must be text or json, got %q", o.Format)
		}
		return nil
	}
	if o.Output != "" && o.Output != "-" {
		if _, err := embedding.FormatOf(o.Output); err != nil {
			return &usageError{err}
		}
		if o.Format != "" {
			return usageErrorf("--format is for standard output; -o %s sets the format by its extension", o.Output)
		}
		return nil
	}
	switch o.Format {
	case "", "jsonl", "csv":
	default:
		return usageErrorf("--format must be jsonl or csv, got %q", o.Format)
	}
	return nil
}

func runEmbed(ctx context.Context, opts *embedOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	c, r, err := opts.Net.load(ctx, opts.IO)
	if err != nil {
		return err
	}
	if opts.Similar != "" {
		return runSimilar(ctx, opts, c, r)
	}
	w, err := newEmbeddingWriter(opts)
	if err != nil {
		return err
	}
	failed, err := embedInputs(ctx, opts, c, r, expandInputs(opts.Inputs), func(it *job, v []float32) {
		if it.err == nil {
			it.err = w.Write(it.name, v)
		}
		if it.err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "res2net: %v\n", it.err)
			if err := w.WriteError(it.name, it.err); err != nil {
				fmt.Fprintf(opts.IO.ErrOut, "res2net: %v\n", err)
			}
		}
	})
	if err != nil {
		w.abort()
		return err
	}
	if err := w.close(); err != nil {
		return err
	}
	if failed > 0 {
		return &silentError{fmt.Errorf("%d of the inputs could not be embedded", failed)}
	}
	return nil
}

// embedInputs embeds the inputs in batches and calls done for each, in
// input order, with its embedding (nil when it.err is set).
func embedInputs(ctx context.Context, opts *embedOptions, c *classify.Classifier, r *classify.Runner, inputs []input, done func(*job, []float32)) (int, error) {
	pre := c.Transform()
	rows := map[*job][]float32{}
	load := func(it *job) {
		var data []byte
		if data, it.err = readInput(opts.IO, it.name); it.err == nil {
			_, it.x, it.err = decodePhoto(data, it.name, pre)
		}
	}
	run := func(good []*job) error {
		feats, err := r.Embed(images(good))
		if err != nil {
			return err
		}
		d := feats.Shape[1]
		for i, it := range good {
			v := feats.Data[i*d : (i+1)*d]
			if opts.Normalize {
				v = embedding.Normalize(v)
			}
			rows[it] = v
		}
		return nil
	}
	return opts.Net.forBatches(ctx, opts.IO, inputs, batchRun{load: load, run: run, what: "embedding", done: func(it *job) {
		done(it, rows[it])
		delete(rows, it)
	}})
}

// embeddingWriter is an embedding.Writer on standard output, or on -o's
// files, which appear only when complete.
type embeddingWriter struct {
	*embedding.Writer
	files []*outputFile // -o's file, and the .npy's file list
}

func newEmbeddingWriter(opts *embedOptions) (*embeddingWriter, error) {
	if opts.Output == "" || opts.Output == "-" {
		format := embedding.JSONL
		if opts.Format == "csv" {
			format = embedding.CSV
		}
		w, err := embedding.NewWriter(opts.IO.Out, format, nil)
		return &embeddingWriter{Writer: w}, err
	}
	format, _ := embedding.FormatOf(opts.Output) // validated
	names := []string{opts.Output}
	if format == embedding.NPY {
		names = append(names, strings.TrimSuffix(opts.Output, filepath.Ext(opts.Output))+".txt")
	}
	ew := &embeddingWriter{}
	for _, name := range names {
		f, err := createOutput(name)
		if err != nil {
			ew.abort()
			return nil, err
		}
		ew.files = append(ew.files, f)
	}
	var list io.Writer
	if len(ew.files) > 1 {
		list = ew.files[1]
	}
	w, err := embedding.NewWriter(ew.files[0], format, list)
	if err != nil {
		ew.abort()
		return nil, err
	}
	ew.Writer = w
	return ew, nil
}

// close finishes the output and moves the files into place.
func (ew *embeddingWriter) close() error {
	if err := ew.Writer.Close(); err != nil {
		ew.abort()
		return err
	}
	for _, f := range ew.files {
		if err := f.commit(); err != nil {
			ew.abort()
			return err
		}
	}
	return nil
}

// abort removes the files not yet in place.
func (ew *embeddingWriter) abort() {
	for _, f := range ew.files {
		discard(f)
	}
}

// neighbour is one line of --similar's output.
type neighbour struct {
	Rank       int     `json:"rank"`
	File       string  `json:"file"`
	Similarity float32 `json:"similarity"` // float32: JSON prints it short
}

// runSimilar embeds the query, then the inputs, and prints the nearest.
func runSimilar(ctx context.Context, opts *embedOptions, c *classify.Classifier, r *classify.Runner) error {
	var query []float32
	if _, err := embedInputs(ctx, opts, c, r, expandInputs([]string{opts.Similar}), func(it *job, v []float32) {
		query = v
		if it.err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "res2net: query: %v\n", it.err)
		}
	}); err != nil {
		return err
	}
	if query == nil {
		return &silentError{fmt.Errorf("the query image %s could not be embedded", opts.Similar)}
	}
	var names []string
	var rows [][]float32
	failed, err := embedInputs(ctx, opts, c, r, expandInputs(opts.Inputs), func(it *job, v []float32) {
		switch {
		case it.err != nil:
			fmt.Fprintf(opts.IO.ErrOut, "res2net: %v\n", it.err)
		case sameFile(it.name, opts.Similar):
			// The query itself is no answer.
		default:
			names, rows = append(names, it.name), append(rows, v)
		}
	})
	if err != nil {
		return err
	}
	matches, err := embedding.Nearest(query, rows, opts.TopK)
	if err != nil {
		return err
	}
	enc := json.NewEncoder(opts.IO.Out)
	enc.SetEscapeHTML(false)
	for i, m := range matches {
		n := neighbour{Rank: i + 1, File: names[m.Index], Similarity: float32(m.Similarity)}
		if opts.Format == "json" {
			err = enc.Encode(n)
		} else {
			_, err = fmt.Fprintf(opts.IO.Out, "%3d  %.4f  %s\n", n.Rank, n.Similarity, n.File)
		}
		if err != nil {
			return err
		}
	}
	if failed > 0 {
		return &silentError{fmt.Errorf("%d of the inputs could not be embedded", failed)}
	}
	return nil
}

// sameFile reports whether two paths name the same file.
func sameFile(a, b string) bool {
	if a == stdinName || b == stdinName {
		return false
	}
	fa, err := os.Stat(a)
	if err != nil {
		return false
	}
	fb, err := os.Stat(b)
	return err == nil && os.SameFile(fa, fb)
}
