package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"io"
	"os"
	"runtime"

	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/spf13/pflag"
)

// netFlags are the checkpoint, decoding and batching flags that explain,
// embed and train-head share with predict.
type netFlags struct {
	Weights   string
	Offline   bool
	Quiet     bool
	BatchSize int
	Threads   int
	NoOrient  bool
	MaxPixels int64
}

func (f *netFlags) register(fs *pflag.FlagSet) {
	fs.StringVarP(&f.Weights, "weights", "w", "", "checkpoint file (default: the cached published checkpoint)")
	fs.BoolVar(&f.Offline, "offline", false, "never download; fail if the checkpoint is not cached")
	fs.BoolVarP(&f.Quiet, "quiet", "q", false, "no download notice or progress bar")
	fs.IntVarP(&f.BatchSize, "batch-size", "b", 8, "images per forward pass")
	fs.IntVarP(&f.Threads, "threads", "t", runtime.NumCPU(), "CPU threads")
	fs.BoolVar(&f.NoOrient, "no-orient", false, "ignore EXIF orientation")
	fs.Int64Var(&f.MaxPixels, "max-pixels", preprocess.DefaultOptions().MaxPixels, "refuse images with more pixels than this")
}

func (f *netFlags) validate() error {
	switch {
	case f.BatchSize < 1:
		return usageErrorf("--batch-size must be at least 1, got %d", f.BatchSize)
	case f.Threads < 1:
		return usageErrorf("--threads must be at least 1, got %d", f.Threads)
	case f.MaxPixels < 1:
		return usageErrorf("--max-pixels must be at least 1, got %d", f.MaxPixels)
	}
	return nil
}

// decodeOptions is the checkpoint's evaluation transform with the
// decoding flags applied.
func (f *netFlags) decodeOptions() preprocess.Options {
	pre := preprocess.DefaultOptions()
	pre.Orient = !f.NoOrient
	pre.MaxPixels = f.MaxPixels
	return pre
}

// maxInputBytes bounds what is read of one input into memory, as the
// decoder bounds it.
const maxInputBytes = 1 << 30

// readInput returns the bytes of an input: a file, or standard input for
// "-".
func readInput(ios *ioStreams, name string) ([]byte, error) {
	var r io.Reader = ios.In
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, maxInputBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	if len(data) > maxInputBytes {
		return nil, fmt.Errorf("%s: %w: more than %d bytes", name, preprocess.ErrTooLarge, maxInputBytes)
	}
	return data, nil
}

// decodePhoto decodes an input's bytes into the photo as the user sees it
// (oriented) and the network's input tensor.
func decodePhoto(data []byte, name string, pre preprocess.Options) (*image.NRGBA, *ops.Tensor, error) {
	img, err := preprocess.Decode(bytes.NewReader(data), pre)
	if err != nil {
		return nil, nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return img, pre.Transform.Apply(img), nil
}

// headLogits applies the classifier to pooled features: the logits the
// network's Forward gives, without a second pass.
func headLogits(net *network, pooled []float32) []float32 {
	head := net.Net.Head()
	logits := make([]float32, head.Out)
	head.Forward(logits, pooled)
	return logits
}

// item is one input on its way through the network.
type item struct {
	name  string
	photo *image.NRGBA // as decoded, for explain's overlay
	x     *ops.Tensor  // the network's input; nil once batched
	err   error
}

// forBatches loads the inputs in order with load (which sets the item's
// tensor or error), hands each batch of size successfully loaded items to
// run, and then passes every item of the batch, failed ones included, to
// done, so results come out in input order. It returns how many items
// failed (load, run per item, or done), and stops early on an error from
// run or on cancellation.
func forBatches(ctx context.Context, inputs []input, size int, load func(*item), run func([]*item) error, done func(*item)) (failed int, err error) {
	var batch, good []*item
	flush := func() error {
		if len(good) > 0 {
			if err := run(good); err != nil {
				return err
			}
		}
		for _, it := range batch {
			done(it)
			if it.err != nil {
				failed++
			}
		}
		batch, good = batch[:0], good[:0]
		return nil
	}
	for _, in := range inputs {
		if err := ctx.Err(); err != nil {
			return failed, err
		}
		it := &item{name: in.path, err: in.err}
		if it.err == nil {
			load(it)
		}
		batch = append(batch, it)
		if it.err == nil {
			good = append(good, it)
		}
		if len(good) == size {
			if err := flush(); err != nil {
				return failed, err
			}
		}
	}
	return failed, flush()
}

// tensors copies the items' same-shaped C x H x W input tensors into one
// N x C x H x W batch and drops them from the items.
func tensors(items []*item) *ops.Tensor {
	per := ops.NumElements(items[0].x.Shape)
	batch := ops.New(append([]int{len(items)}, items[0].x.Shape...)...)
	for i, it := range items {
		copy(batch.Data[i*per:], it.x.Data)
		it.x = nil
	}
	return batch
}
