package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"

	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/embedding"
	"github.com/res2net/res2net/pkg/headfit"
	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/registry"
	"github.com/spf13/cobra"
)

type trainHeadOptions struct {
	IO      *ioStreams
	DataDir string
	Output  string // the .safetensors checkpoint to write
	ValDir  string // validation images in the same layout; "" to split DataDir
	Val     float64
	L2      float64
	Seed    uint64
	MaxIter int
	NoCache bool
	Net     netFlags
}

// Defaults of train-head's fitting flags.
const (
	defaultVal = 0.2
	// defaultL2 is mild: with standardised features and a few dozen
	// photos per class it keeps the weights finite on separable data
	// without costing accuracy.
	defaultL2   = 1e-3
	defaultSeed = 1
)

func newTrainHeadCmd(io *ioStreams) *cobra.Command {
	opts := &trainHeadOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "train-head DATA_DIR -o MODEL.safetensors",
		Short: "Fit a new classifier for your own classes on the frozen network",
		Long: `Fit a new classifier (the head) for your own classes on the network's frozen
features. DATA_DIR has one sub-folder per class, named for its label, with
that class's images (searched recursively).

The features are computed once per image (with a progress bar) and cached
by file content and model under the cache folder, so another run with other
settings is quick. The head is multinomial logistic regression with L2
regularisation (--l2, on standardised features), fitted with L-BFGS; the
result depends only on the data and --seed. --val takes that fraction of
each class, at random with --seed, for validation; --val-dir uses other
images instead. Train and validation accuracy and the confusion matrix are
printed.

The output is a safetensors checkpoint: the backbone as it was, the new
head, and the class names and transform in its metadata, so that
'res2net predict --weights MODEL.safetensors' prints your labels.`,
		Example: `  res2net train-head photos/ -o pets.safetensors
  res2net train-head train/ --val-dir val/ --l2 0.01 -o pets.safetensors
  res2net predict --weights pets.safetensors new-photo.jpg`,
		Args: argsUsage(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.DataDir = args[0]
			if opts.ValDir != "" && cmd.Flags().Changed("val") {
				return usageErrorf("--val and --val-dir both choose the validation images; give one")
			}
			return runTrainHead(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Output, "output", "o", "", "checkpoint to write (.safetensors)")
	f.StringVar(&opts.ValDir, "val-dir", "", "validation images, one sub-folder per class (default: split DATA_DIR)")
	f.Float64Var(&opts.Val, "val", defaultVal, "fraction of each class held out for validation, in [0, 1)")
	f.Float64Var(&opts.L2, "l2", defaultL2, "L2 regularisation strength")
	f.Uint64Var(&opts.Seed, "seed", defaultSeed, "seed of the validation split")
	f.IntVar(&opts.MaxIter, "max-iter", headfit.DefaultMaxIterations, "most L-BFGS iterations")
	f.BoolVar(&opts.NoCache, "no-cache", false, "compute every image's features, and cache none")
	opts.Net.add(cmd, defaultFeatureBatch)
	return cmd
}

func (o *trainHeadOptions) validate() error {
	if err := o.Net.validate(); err != nil {
		return err
	}
	switch {
	case o.Output == "":
		return usageErrorf("-o MODEL.safetensors is required")
	case !strings.EqualFold(filepath.Ext(o.Output), ".safetensors"):
		return usageErrorf("-o %s: the checkpoint is written as safetensors; name it .safetensors", o.Output)
	case !(o.Val >= 0 && o.Val < 1):
		return usageErrorf("--val must be in [0, 1), got %v", o.Val)
	case !(o.L2 >= 0) || math.IsInf(o.L2, 0):
		return usageErrorf("--l2 must be a finite number >= 0, got %v", o.L2)
	case o.MaxIter < 1:
		return usageErrorf("--max-iter must be at least 1, got %d", o.MaxIter)
	}
	return nil
}

// dataset is the labelled images of a folder of class folders.
type dataset struct {
	inputs []input
	labels []int // class of each input
}

// scanClasses lists the class folders of dir (sub-folders, following
// links, in lexical order; hidden ones skipped) and their images.
func scanClasses(dir string) ([]string, [][]input, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", dir, unwrapPathError(err))
	}
	var names []string
	var files [][]input
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		if fi, err := os.Stat(p); err != nil || !fi.IsDir() {
			continue // files beside the class folders are not examples
		}
		ins := expandInputs([]string{p})
		if len(ins) == 1 && ins[0].err != nil && ins[0].name == p {
			return nil, nil, fmt.Errorf("class %q: %w", e.Name(), ins[0].err)
		}
		names = append(names, e.Name())
		files = append(files, ins)
	}
	return names, files, nil
}

// loadDatasets reads the training folder and, if given, the validation
// folder, whose classes must be among the training ones.
func (o *trainHeadOptions) loadDatasets() (classes []string, train, val dataset, err error) {
	classes, files, err := scanClasses(o.DataDir)
	if err != nil {
		return nil, train, val, err
	}
	if len(classes) < 2 {
		return nil, train, val, fmt.Errorf("%s: %d class folders, need at least 2 (one sub-folder of images per class)", o.DataDir, len(classes))
	}
	for c, ins := range files {
		train.inputs = append(train.inputs, ins...)
		for range ins {
			train.labels = append(train.labels, c)
		}
	}
	if o.ValDir == "" {
		return classes, train, val, nil
	}
	vnames, vfiles, err := scanClasses(o.ValDir)
	if err != nil {
		return nil, train, val, fmt.Errorf("--val-dir: %w", err)
	}
	for i, name := range vnames {
		c := indexOf(classes, name)
		if c < 0 {
			return nil, train, val, fmt.Errorf("--val-dir %s: class %q is not among the training classes (%s)", o.ValDir, name, strings.Join(classes, ", "))
		}
		val.inputs = append(val.inputs, vfiles[i]...)
		for range vfiles[i] {
			val.labels = append(val.labels, c)
		}
	}
	return classes, train, val, nil
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func runTrainHead(ctx context.Context, opts *trainHeadOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	classes, train, val, err := opts.loadDatasets()
	if err != nil {
		return err
	}
	path, err := opts.checkpointPath(ctx)
	if err != nil {
		return err
	}
	m := opts.Net.Model
	m.Weights = path
	m.Precision = opts.Net.Run.precision()
	c, err := loadClassifier(ctx, opts.IO, &m, opts.Net.Transform.options, opts.Net.Quiet)
	if err != nil {
		return err
	}
	var cache *embedding.Cache
	if !opts.NoCache {
		if cache, err = openFeatureCache(path, c, opts.Net.Run.Precision); err != nil {
			return err
		}
	}

	all := dataset{inputs: append(append([]input(nil), train.inputs...), val.inputs...), labels: append(append([]int(nil), train.labels...), val.labels...)}
	feats, cached, err := opts.extract(ctx, c, cache, all.inputs)
	if err != nil {
		return err
	}
	// Keep the images that gave features; a class left with none is an
	// error, naming it.
	split := len(train.inputs)
	var x [][]float32
	var y []int
	var isVal []bool
	perClass := make([]int, len(classes))
	for i, f := range feats {
		if f == nil {
			continue
		}
		x, y, isVal = append(x, f), append(y, all.labels[i]), append(isVal, i >= split)
		if i < split {
			perClass[all.labels[i]]++
		}
	}
	for k, n := range perClass {
		if n == 0 {
			return fmt.Errorf("class %q: none of its images could be read", classes[k])
		}
	}

	trainIdx, valIdx, err := opts.splitIndices(y, isVal)
	if err != nil {
		return err
	}
	rows := func(idx []int) ([][]float32, []int) {
		xs, ys := make([][]float32, len(idx)), make([]int, len(idx))
		for i, j := range idx {
			xs[i], ys[i] = x[j], y[j]
		}
		return xs, ys
	}
	tx, ty := rows(trainIdx)
	head, err := headfit.Fit(tx, ty, len(classes), headfit.Options{L2: opts.L2, MaxIterations: opts.MaxIter})
	if err != nil {
		return err
	}
	vx, vy := rows(valIdx)
	if err := report(opts.IO.Out, classes, perClass, len(x), cached, head, tx, ty, vx, vy); err != nil {
		return err
	}
	if err := writeHeadCheckpoint(opts.Output, path, c, classes, head); err != nil {
		return err
	}
	_, err = fmt.Fprintf(opts.IO.Out, "wrote %s (%d classes)\n", opts.Output, len(classes))
	return err
}

// checkpointPath is --weights, or the --model's cached checkpoint
// (fetched if needed): train-head reads it twice, to run it and to copy
// its backbone.
func (o *trainHeadOptions) checkpointPath(ctx context.Context) (string, error) {
	if o.Net.Model.Weights != "" {
		return o.Net.Model.Weights, nil
	}
	entry, err := o.Net.Model.entry()
	if err != nil {
		return "", err
	}
	return modelCheckpoint(ctx, o.IO, entry, o.Net.Model.Offline, o.Net.Quiet)
}

// openFeatureCache opens the cache of the model's features: keyed by the
// checkpoint's bytes and everything that changes what the network sees.
func openFeatureCache(path string, c *classify.Classifier, precision string) (*embedding.Cache, error) {
	root, err := registry.CacheDir()
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t := c.Transform()
	key, err := embedding.ModelKey(f, fmt.Sprintf("%+v orient=%v precision=%s", t.Transform, t.Orient, precision))
	if err != nil {
		return nil, err
	}
	return embedding.OpenCache(root, key)
}

// extract returns each input's pooled features (nil for an input that
// could not be read, reported on stderr) and how many came from the cache.
func (o *trainHeadOptions) extract(ctx context.Context, c *classify.Classifier, cache *embedding.Cache, inputs []input) ([][]float32, int, error) {
	r := c.NewRunner(o.Net.Run.threads())
	dim := c.Network().Features()
	pre := c.Transform()
	feats := make([][]float32, 0, len(inputs))
	cached := 0
	found := map[*job][]float32{}
	keys := map[*job]string{}
	load := func(j *job) {
		data, err := readInput(o.IO, j.name)
		if err != nil {
			j.err = err
			return
		}
		if cache != nil {
			keys[j] = embedding.ContentKey(data)
			if v, ok := cache.Get(keys[j], dim); ok {
				found[j] = v
				cached++
				return
			}
		}
		_, j.x, j.err = decodePhoto(data, j.name, pre)
	}
	run := func(good []*job) error {
		out, err := r.Embed(images(good))
		if err != nil {
			return err
		}
		for i, j := range good {
			v := append([]float32(nil), out.Data[i*dim:(i+1)*dim]...)
			found[j] = v
			if cache != nil {
				if err := cache.Put(keys[j], v); err != nil {
					return err
				}
			}
		}
		return nil
	}
	done := func(j *job) {
		if j.err != nil {
			fmt.Fprintf(o.IO.ErrOut, "res2net: skipping %v\n", j.err)
		}
		feats = append(feats, found[j])
		delete(found, j)
		delete(keys, j)
	}
	if _, err := o.Net.forBatches(ctx, o.IO, inputs, batchRun{load: load, run: run, done: done, what: "features"}); err != nil {
		return nil, 0, err
	}
	return feats, cached, nil
}

// splitIndices picks the training and validation examples: --val-dir's
// images, or a stratified split of the training images.
func (o *trainHeadOptions) splitIndices(labels []int, isVal []bool) (train, val []int, err error) {
	if o.ValDir != "" {
		for i, v := range isVal {
			if v {
				val = append(val, i)
			} else {
				train = append(train, i)
			}
		}
		return train, val, nil
	}
	return headfit.StratifiedSplit(labels, o.Val, o.Seed)
}

// report prints the data, the fit, the accuracies and the confusion matrix
// (of the validation images, or the training ones without any).
func report(w io.Writer, classes []string, perClass []int, images, cached int, h *headfit.Head, tx [][]float32, ty []int, vx [][]float32, vy []int) error {
	counts := make([]string, len(classes))
	for i, name := range classes {
		counts[i] = fmt.Sprintf("%s %d", name, perClass[i])
	}
	fmt.Fprintf(w, "classes: %d (%s)\n", len(classes), strings.Join(counts, ", "))
	fmt.Fprintf(w, "features: %d images (%d from the cache), %d values each\n", images, cached, h.Features)
	state := "converged"
	if !h.Converged {
		state = "stopped at --max-iter"
	}
	fmt.Fprintf(w, "L-BFGS: %d iterations, loss %.4g (%s)\n", h.Iterations, h.Loss, state)
	trainM, err := headfit.Confusion(ty, h.Predict(tx), len(classes))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "train accuracy:      %5.1f%% (%d images)\n", 100*headfit.Accuracy(trainM), len(ty))
	matrix, which := trainM, "training"
	if len(vy) > 0 {
		valM, err := headfit.Confusion(vy, h.Predict(vx), len(classes))
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "validation accuracy: %5.1f%% (%d images)\n", 100*headfit.Accuracy(valM), len(vy))
		matrix, which = valM, "validation"
	}
	fmt.Fprintf(w, "\nconfusion matrix (%s images; rows: true class, columns: predicted)\n", which)
	width := 1
	for _, c := range classes {
		width = max(width, len(c))
	}
	fmt.Fprintf(w, "%*s", width, "")
	for _, c := range classes {
		fmt.Fprintf(w, "  %*s", width, c)
	}
	fmt.Fprintln(w)
	for t, row := range matrix {
		fmt.Fprintf(w, "%-*s", width, classes[t])
		for _, n := range row {
			fmt.Fprintf(w, "  %*d", width, n)
		}
		fmt.Fprintln(w)
	}
	_, err = fmt.Fprintln(w)
	return err
}

// headKeys are the state-dict names of the classifier's weight and bias:
// the last two entries of the layout.
func headKeys(cfg model.Config) (weight, bias string, err error) {
	params := cfg.StateDict()
	if len(params) < 2 {
		return "", "", errors.New("the model has no classifier")
	}
	weight, bias = params[len(params)-2].Name, params[len(params)-1].Name
	if !strings.HasSuffix(weight, ".weight") || !strings.HasSuffix(bias, ".bias") {
		return "", "", fmt.Errorf("the model's last parameters %s, %s are not a classifier", weight, bias)
	}
	return weight, bias, nil
}

// writeHeadCheckpoint writes the backbone of the checkpoint at src with
// the new head as a safetensors file, with the labels and transform in its
// metadata. It reads src again: building the network consumed the first
// copy of its weights.
func writeHeadCheckpoint(dst, src string, c *classify.Classifier, classes []string, h *headfit.Head) error {
	wKey, bKey, err := headKeys(c.Config())
	if err != nil {
		return err
	}
	ck, err := checkpoint.Load(src)
	if err != nil {
		return err
	}
	if _, ok := ck.Tensors[wKey]; !ok {
		return fmt.Errorf("%s: no %s to replace", src, wKey)
	}
	ck.Tensors[wKey] = &ops.Tensor{Shape: []int{h.Classes, h.Features}, Data: h.Weight}
	ck.Tensors[bKey] = &ops.Tensor{Shape: []int{h.Classes}, Data: h.Bias}
	meta, err := classify.Metadata(classes, c.Transform().Transform)
	if err != nil {
		return err
	}
	out, err := createOutput(dst)
	if err != nil {
		return err
	}
	defer discard(out)
	if err := checkpoint.WriteSafetensors(out, ck.Tensors, meta); err != nil {
		return fmt.Errorf("-o %s: %w", dst, err)
	}
	return out.commit()
}
