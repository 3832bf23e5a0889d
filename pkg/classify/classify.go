// Package classify turns images into predictions with a Res2Net
// checkpoint: it loads the checkpoint into a network with its labels and
// evaluation transform, decodes and transforms image bytes into tensors,
// runs them in batches and ranks the classes. Both `res2net predict` and
// `res2net serve` use it.
//
// A Classifier is immutable after Load or New and holds the only copy of the
// weights, so any number of goroutines share one. Each goroutine that runs
// the network makes its own Runner (the run buffers), which is not safe for
// concurrent use:
//
//	c, err := classify.Load("model.pth", classify.Options{
//		Transform: preprocess.DefaultOptions(),
//		Labels:    registry.Default.Classes,
//	})
//	x, err := c.DecodeFile("photo.jpg")       // 3 x 224 x 224, any goroutine
//	r := c.NewRunner(2)                        // per goroutine, 2 threads
//	preds, err := r.Classify([]*ops.Tensor{x}, 5)
//	rec := classify.Record{File: "photo.jpg", Predictions: preds[0]}
//
// Record is what `predict --format json` prints, one per input: the file
// and its ranked predictions, or the file and the error. Scores that are
// not finite (a checkpoint with NaN weights) are written as null.
package classify

import (
	"errors"
	"fmt"
	"io"
	"runtime/debug"
	"strings"

	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/ops/gemm"
	"github.com/res2net/res2net/pkg/packcache"
	"github.com/res2net/res2net/pkg/preprocess"
)

// Options configures Load.
type Options struct {
	// Transform decodes and prepares images (resize, crop, normalisation,
	// orientation, pixel limit) as the checkpoint was evaluated.
	Transform preprocess.Options
	// Labels name the classes in logit order. When nil, or when its length
	// differs from the checkpoint's classes and LabelsOptional is set,
	// classes are named "class 0", "class 1", ...; a differing length is
	// otherwise an error.
	Labels []string
	// LabelsOptional makes Labels a default that applies only when it fits
	// (a registry's names for a checkpoint that may be another one).
	LabelsOptional bool
	// Precision is the arithmetic of the convolutions (gemm.FP32, the zero
	// value, or gemm.BF16). Without BF16 instructions the network runs
	// FP32: Config().Precision says which it got.
	Precision gemm.Precision
	// CheckpointTransform lets a transform recorded in the checkpoint
	// (MetaTransform) replace Transform's sizes and normalisation. Labels
	// recorded in it (MetaLabels) replace Labels when LabelsOptional.
	CheckpointTransform bool
	// ByArchitecture, if not nil, is asked for the labels and transform of
	// a known model whose configuration is the checkpoint's, as
	// model.Infer reads it (for a file given without its model's name).
	// When ok, the Labels, LabelsOptional, Transform and
	// CheckpointTransform it returns replace these, and the checkpoint's
	// recorded labels and transform still apply over them as above.
	ByArchitecture func(cfg model.Config) (opts Options, ok bool)
	// Warn, if not nil, receives the loader's warnings (for example NaN
	// weights), each naming the file.
	Warn func(msg string)
	// Cache, if not nil, keeps the folded and packed weights of each
	// checkpoint Load reads, which later Loads of the unchanged file map
	// instead of reading it.
	Cache *packcache.Cache
}

// ErrLabelCount reports labels that do not match the network's classes.
var ErrLabelCount = errors.New("wrong number of labels")

// Classifier is a loaded network with its labels and transform. It is
// immutable and safe for concurrent use; run it through Runners.
type Classifier struct {
	net       *model.Network
	labels    []string
	transform preprocess.Options
}

// Load reads the checkpoint at path (any format pkg/checkpoint reads) and
// builds the Res2Net whose layout and configuration model.Infer reads from
// its state dict (any of the registry's architectures, or narrower ones
// such as the test fixtures).
func Load(path string, opts Options) (*Classifier, error) {
	if opts.Cache == nil {
		return load(path, opts, nil)
	}
	id, err := packcache.Identify(path)
	if err != nil {
		return load(path, opts, nil) // which says what is wrong with path
	}
	m, info, err := opts.Cache.Load(id, opts.Precision)
	if err != nil {
		// Missing, stale or damaged: rebuilt from the checkpoint.
		return load(path, opts, &id)
	}
	return fromCache(path, m, info, opts)
}

// load is Load from the checkpoint, which it stores in opts.Cache when id
// (the checkpoint's, taken before reading it) is not nil.
func load(path string, opts Options, id *packcache.Identity) (*Classifier, error) {
	// Packing the weights copies them while the checkpoint's copy is still
	// live; collecting more often than usual until the model is built keeps
	// the peak near one copy instead of two.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	ckpt, err := checkpoint.Load(path)
	if err != nil {
		return nil, err
	}
	if opts.Warn != nil {
		for _, w := range ckpt.Warnings {
			opts.Warn(fmt.Sprintf("%s: %s", path, w))
		}
	}
	cfg, inferErr := infer(ckpt.Tensors, &opts)
	if err := fromMetadata(ckpt.Metadata, &opts); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, err := newModel(ckpt.Tensors, cfg, inferErr, opts.Precision)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c, err := newClassifier(m, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if id != nil {
		// A cache that cannot be written only costs the next run time.
		opts.Cache.Store(*id, m, packcache.Info{Warnings: ckpt.Warnings, Metadata: ckpt.Metadata})
	}
	return c, nil
}

// New builds a classifier from a state dict (as pkg/checkpoint loads it);
// like model.New it consumes the tensors.
func New(tensors map[string]*ops.Tensor, opts Options) (*Classifier, error) {
	cfg, inferErr := infer(tensors, &opts)
	m, err := newModel(tensors, cfg, inferErr, opts.Precision)
	if err != nil {
		return nil, err
	}
	return newClassifier(m, opts)
}

func newClassifier(m *model.Network, opts Options) (*Classifier, error) {
	if err := opts.Transform.Validate(); err != nil {
		return nil, fmt.Errorf("transform: %w", err)
	}
	classes := m.Config().Classes
	labels := opts.Labels
	if len(labels) != classes {
		if labels != nil && !opts.LabelsOptional {
			return nil, fmt.Errorf("%w: %d labels for a network with %d classes", ErrLabelCount, len(labels), classes)
		}
		labels = make([]string, classes)
		for i := range labels {
			labels[i] = fmt.Sprintf("class %d", i)
		}
	}
	return &Classifier{net: m, labels: labels, transform: opts.Transform}, nil
}

// infer reads the state dict's configuration with model.Infer and, when
// it can, applies opts.ByArchitecture.
func infer(tensors map[string]*ops.Tensor, opts *Options) (model.Config, error) {
	cfg, err := model.Infer(tensors)
	if err == nil {
		opts.byArchitecture(cfg)
	}
	return cfg, err
}

// byArchitecture takes the labels and transform ByArchitecture knows for
// cfg, if any.
func (o *Options) byArchitecture(cfg model.Config) {
	if o.ByArchitecture == nil {
		return
	}
	if k, ok := o.ByArchitecture(cfg); ok {
		o.Labels, o.LabelsOptional = k.Labels, k.LabelsOptional
		o.Transform, o.CheckpointTransform = k.Transform, k.CheckpointTransform
	}
}

// newModel builds the Res2Net of cfg, the configuration model.Infer read
// from the state dict. When it could not be read (inferErr), the state
// dict is checked against the Res2Net-50 of its key layout instead, whose
// error lists every missing, unexpected and misshapen key: the clearest
// report for a file that is no Res2Net or is damaged.
func newModel(tensors map[string]*ops.Tensor, cfg model.Config, inferErr error, prec gemm.Precision) (*model.Network, error) {
	if inferErr == nil {
		cfg.Precision = prec
		return model.New(cfg, tensors)
	}
	cfg = referenceConfig(tensors)
	cfg.Precision = prec
	m, err := model.New(cfg, tensors)
	if err != nil {
		return nil, fmt.Errorf("%w\n(%v)", err, inferErr)
	}
	return m, nil
}

// referenceConfig is the Res2Net-50 a state dict that is no known Res2Net
// is checked against: timm's when its keys look like timm's (a torchvision
// ResNet's do too), else Holocron's; with the classes of its head when it
// has a 2-D one, so that the report lists the keys that did not fit rather
// than stopping at the head.
func referenceConfig(tensors map[string]*ops.Tensor) model.Config {
	cfg, head := model.Res2Net50(), "head.weight"
	for key := range tensors {
		if strings.HasPrefix(key, "conv1.") || strings.HasPrefix(key, "layer1.") || strings.HasPrefix(key, "fc.") {
			cfg, head = model.Res2Net50_26w_4s(), "fc.weight"
			break
		}
	}
	if t, ok := tensors[head]; ok && len(t.Shape) == 2 && t.Shape[0] > 0 {
		cfg.Classes = t.Shape[0]
	}
	return cfg
}

// Config returns the network's configuration.
func (c *Classifier) Config() model.Config { return c.net.Config() }

// Network returns the shared network, for runs other than
// classification (model.Runner's Embed and FeatureMaps).
func (c *Classifier) Network() *model.Network { return c.net }

// Labels returns the class names in logit order; the caller must not
// modify them.
func (c *Classifier) Labels() []string { return c.labels }

// Transform returns the decoding and preprocessing options.
func (c *Classifier) Transform() preprocess.Options { return c.transform }

// InputShape is the shape of one preprocessed image: 3 x Crop x Crop.
func (c *Classifier) InputShape() []int {
	return []int{3, c.transform.Crop, c.transform.Crop}
}

// Decode reads one encoded image from r and returns its preprocessed
// 3 x H x W tensor; name identifies the input in errors (for example
// "<stdin>").
func (c *Classifier) Decode(r io.Reader, name string) (*ops.Tensor, error) {
	return preprocess.Read(r, name, c.transform)
}

// DecodeFile is Decode for the image file at path.
func (c *Classifier) DecodeFile(path string) (*ops.Tensor, error) {
	return preprocess.Load(path, c.transform)
}

// Runner runs a Classifier's network on batches. It keeps the run buffers
// and the batch tensor between calls; it is not safe for concurrent use, so
// each goroutine makes its own with NewRunner.
type Runner struct {
	c       *Classifier
	run     *model.Runner
	scratch []float32 // the batch tensor's memory, reused across batches
}

// NewRunner returns a runner using threads CPU threads per forward pass
// (< 1: GOMAXPROCS).
func (c *Classifier) NewRunner(threads int) *Runner {
	run := c.net.NewRunner()
	run.SetThreads(threads)
	return &Runner{c: c, run: run}
}

// Forward runs the network on an N x 3 x H x W batch of preprocessed
// images and returns the N x Classes logits.
func (r *Runner) Forward(x *ops.Tensor) (*ops.Tensor, error) {
	return r.run.Forward(x)
}

// Logits stacks images (each 3 x H x W, all the same shape) into one batch
// and returns their N x Classes logits.
func (r *Runner) Logits(images []*ops.Tensor) (*ops.Tensor, error) {
	if len(images) == 0 {
		return ops.New(0, r.c.Config().Classes), nil
	}
	x, err := r.stack(images)
	if err != nil {
		return nil, err
	}
	return r.Forward(x)
}

// Embed is Logits without the head: the N x Features pooled features the
// classifier sees.
func (r *Runner) Embed(images []*ops.Tensor) (*ops.Tensor, error) {
	if len(images) == 0 {
		return ops.New(0, r.c.net.Features()), nil
	}
	x, err := r.stack(images)
	if err != nil {
		return nil, err
	}
	return r.run.Embed(x)
}

// FeatureMaps returns the last stage's N x Features x h x w output for
// images, before pooling (class activation maps are computed from it).
func (r *Runner) FeatureMaps(images []*ops.Tensor) (*ops.Tensor, error) {
	if len(images) == 0 {
		return nil, errors.New("classify: no images")
	}
	x, err := r.stack(images)
	if err != nil {
		return nil, err
	}
	return r.run.FeatureMaps(x)
}

// stack copies images (at least one) into the batch tensor, which reuses
// the runner's memory.
func (r *Runner) stack(images []*ops.Tensor) (*ops.Tensor, error) {
	shape := images[0].Shape
	per := ops.NumElements(shape)
	for i, im := range images {
		if !ops.SameShape(im.Shape, shape) || len(im.Data) != per {
			return nil, fmt.Errorf("image %d of the batch has shape %s, the first %s", i, ops.ShapeString(im.Shape), ops.ShapeString(shape))
		}
	}
	if cap(r.scratch) < len(images)*per {
		r.scratch = make([]float32, len(images)*per)
	}
	x := &ops.Tensor{Shape: append([]int{len(images)}, shape...), Data: r.scratch[:len(images)*per]}
	for i, im := range images {
		copy(x.Data[i*per:], im.Data)
	}
	return x, nil
}

// Classify runs images as one batch and returns each one's top-k
// predictions, most probable first.
func (r *Runner) Classify(images []*ops.Tensor, topk int) ([][]Prediction, error) {
	logits, err := r.Logits(images)
	if err != nil {
		return nil, err
	}
	return r.c.Rank(logits, topk), nil
}

// Rank turns N x Classes logits into each row's top-k predictions: softmax
// probabilities, labels and logits, most probable first (NaN last). The
// logits must have one column per label (it panics otherwise: a caller's
// mistake, since the network produces exactly that).
func (c *Classifier) Rank(logits *ops.Tensor, topk int) [][]Prediction {
	if len(logits.Shape) != 2 || logits.Shape[1] != len(c.labels) {
		panic(fmt.Sprintf("classify: logits of shape %s for %d classes", ops.ShapeString(logits.Shape), len(c.labels)))
	}
	classes := logits.Shape[1]
	probs := ops.Softmax(logits)
	out := make([][]Prediction, logits.Shape[0])
	for i := range out {
		row := logits.Data[i*classes : (i+1)*classes]
		p := probs.Data[i*classes : (i+1)*classes]
		for rank, idx := range ops.TopK(p, topk) {
			out[i] = append(out[i], Prediction{
				Rank:        rank + 1,
				Index:       idx,
				Label:       c.labels[idx],
				Probability: Score(p[idx]),
				Logit:       Score(row[idx]),
			})
		}
	}
	return out
}

// RunBytes estimates, from above, the memory a forward pass of n images of
// h x w takes with threads threads: the batch tensor, and the activation
// buffers of the images in flight at once (the model runs groups of at
// most 8 images per thread, reusing one set of buffers per group). About 8
// buffers the size of the largest activation, the stem's or the first
// stage's, cover every layer with its im2col scratch.
func (c *Classifier) RunBytes(n, h, w, threads int) float64 {
	const bytesPerValue, buffers, maxGroup = 4, 8, 8
	cfg := c.Config()
	inFlight := min(n, max(threads, 1)*maxGroup)
	h2, w2 := float64((h+1)/2), float64((w+1)/2)
	h4, w4 := float64((h+3)/4), float64((w+3)/4)
	largest := max(float64(cfg.StemChannels)*h2*w2, float64(4*cfg.Planes[0])*h4*w4)
	input := float64(n) * 3 * float64(h) * float64(w)
	return bytesPerValue * (input + float64(inFlight)*buffers*largest)
}
