package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/download"
	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/registry"
	"github.com/spf13/cobra"
)

type inspectOptions struct {
	IO     *ioStreams
	Format string
	Model  modelFlags
}

func newInspectCmd(io *ioStreams) *cobra.Command {
	opts := &inspectOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "inspect",
		Short: "Show every layer: output shape, parameters and MACs",
		Long: `Show every layer of the model (--model, from its configuration alone) with its
output shape for one 224x224 image, its learnable parameters and its
multiply-accumulates, and the totals. With --weights, show the architecture
read from the checkpoint file and check the file against it (against the
model's when none can be read): the exit status is 1 when it does not match.
The published accuracy is shown for the published checkpoint only (no --weights, or a file with its SHA-256).`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runInspect(cmd.Context(), opts)
		},
	}
	opts.Model.addModel(cmd)
	addFormat(cmd, &opts.Format, inspectFormats...)
	return cmd
}

var inspectFormats = []string{"text", "json"}

// inspectLayer is one row of the layer table.
type inspectLayer struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Shape  []int  `json:"output_shape"`
	Params int64  `json:"params"`
	MACs   int64  `json:"macs"`
}

// checkpointReport describes a checkpoint file given with --weights.
type checkpointReport struct {
	Path    string `json:"path"`
	Format  string `json:"format"`
	SHA256  string `json:"sha256"`
	Tensors int    `json:"tensors"`
	Matches bool   `json:"matches_architecture"`
	Problem string `json:"problem,omitempty"`
}

type inspectReport struct {
	Model       string            `json:"model"`
	Top1        *float64          `json:"published_top1,omitempty"` // validation accuracy, %; only for the published file
	Top5        *float64          `json:"published_top5,omitempty"`
	Dataset     string            `json:"published_dataset,omitempty"`
	Input       []int             `json:"input_shape"`
	Layers      []inspectLayer    `json:"layers"`
	TotalParams int64             `json:"total_params"`
	TotalMACs   int64             `json:"total_macs"`
	Checkpoint  *checkpointReport `json:"checkpoint,omitempty"`
}

const inspectSize = 224

func runInspect(ctx context.Context, opts *inspectOptions) error {
	if err := checkFormat(opts.Format, inspectFormats...); err != nil {
		return err
	}
	entry, err := opts.Model.entry()
	if err != nil {
		return err
	}
	cfg := entry.Config
	rep := &inspectReport{Model: entry.Arch, Input: []int{1, 3, inspectSize, inspectSize}}
	// The published accuracy belongs to the published file: without
	// --weights the report describes it, with --weights only if the file is
	// it, by its SHA-256.
	published := true
	if opts.Model.Weights != "" {
		ck, fileCfg, err := inspectCheckpoint(opts.Model.Weights, cfg)
		if err != nil {
			return err
		}
		rep.Checkpoint = ck
		if e, ok := registry.ForConfig(fileCfg); ok && !opts.Model.named() {
			entry, cfg, rep.Model = e, e.Config, e.Arch // which published file it may be
		}
		published = entry.IsPublished(ck.SHA256, "")
		if fileCfg != cfg {
			cfg, rep.Model = fileCfg, fileCfg.String()
		}
	}
	if published {
		rep.Top1, rep.Top5, rep.Dataset = &entry.Top1, &entry.Top5, entry.Dataset
	}
	for _, l := range cfg.Summary(inspectSize, inspectSize) {
		rep.Layers = append(rep.Layers, inspectLayer{l.Name, l.Type, l.OutShape, l.Params, l.MACs})
		rep.TotalParams += l.Params
		rep.TotalMACs += l.MACs
	}
	if opts.Format == "json" {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		err = enc.Encode(rep)
	} else {
		w := bufio.NewWriter(opts.IO.Out)
		rep.writeText(w)
		err = w.Flush()
	}
	if err != nil {
		return err
	}
	if c := rep.Checkpoint; c != nil && !c.Matches {
		return &silentError{fmt.Errorf("%s does not match %s", c.Path, rep.Model)}
	}
	return nil
}

// inspectCheckpoint loads the file and checks it against the architecture
// model.Infer reads from it, or against cfg when none can be read, and
// returns the architecture checked. A file that loads but does not fit is
// reported, not an error.
func inspectCheckpoint(path string, cfg model.Config) (*checkpointReport, model.Config, error) {
	// Load first: its errors say what is wrong with a file that is no
	// checkpoint at all.
	ckpt, err := checkpoint.Load(path)
	if err != nil {
		return nil, cfg, err
	}
	sum, err := download.SHA256File(path)
	if err != nil {
		return nil, cfg, err
	}
	if inferred, err := model.Infer(ckpt.Tensors); err == nil {
		cfg = inferred
	}
	rep := &checkpointReport{Path: path, Format: ckpt.Format, SHA256: sum, Tensors: len(ckpt.Tensors), Matches: true}
	if _, err := model.New(cfg, ckpt.Tensors); err != nil {
		rep.Matches, rep.Problem = false, err.Error()
	}
	return rep, cfg, nil
}

// writeText prints the report; the caller's bufio.Writer keeps the first
// write error and returns it from Flush.
func (r *inspectReport) writeText(w io.Writer) {
	fmt.Fprintf(w, "%s, input %s", r.Model, ops.ShapeString(r.Input))
	if r.Top1 != nil {
		fmt.Fprintf(w, " (published checkpoint: %s val top-1 %.2f %%, top-5 %.2f %%)", r.Dataset, *r.Top1, *r.Top5)
	}
	fmt.Fprint(w, "\n\n")
	nameWidth := len("layer")
	for _, l := range r.Layers {
		nameWidth = max(nameWidth, len(l.Name))
	}
	row := func(name, typ, shape, params, macs string) {
		fmt.Fprintf(w, "%-*s  %-10s  %12s  %11s  %15s\n", nameWidth, name, typ, shape, params, macs)
	}
	row("layer", "type", "output", "params", "MACs")
	for _, l := range r.Layers {
		row(l.Name, l.Type, ops.ShapeString(l.Shape), group(l.Params), group(l.MACs))
	}
	fmt.Fprintf(w, "\nTotal parameters: %s (%.2fM)\n", group(r.TotalParams), float64(r.TotalParams)/1e6)
	fmt.Fprintf(w, "Total MACs:       %s (%.2f GMACs)\n", group(r.TotalMACs), float64(r.TotalMACs)/1e9)
	if c := r.Checkpoint; c != nil {
		fmt.Fprintf(w, "\nCheckpoint %s\n  format:  %s\n  sha256:  %s\n  tensors: %d\n", c.Path, c.Format, c.SHA256, c.Tensors)
		if c.Matches {
			fmt.Fprintln(w, "  matches the architecture: yes")
		} else {
			fmt.Fprintf(w, "  matches the architecture: no\n  %s\n", strings.ReplaceAll(c.Problem, "\n", "\n  "))
		}
	}
}

// group formats n with thousands separators: 23670610 -> "23,670,610".
func group(n int64) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
