package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"io"

	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/spf13/cobra"
)

// netFlags are the flags of the commands that run the network on images
// (predict, explain, embed, train-head): the model, how to run it and its
// transform.
type netFlags struct {
	Model     modelFlags
	Run       runFlags
	Transform transformFlags
	Quiet     bool
}

// defaultFeatureBatch is the --batch-size of explain, embed and train-head.
const defaultFeatureBatch = 8

// add registers the flags, with batch the --batch-size default.
func (f *netFlags) add(cmd *cobra.Command, batch int) {
	addQuiet(cmd, &f.Quiet)
	f.Model.addLoad(cmd)
	f.Run.add(cmd, batch)
	f.Transform.add(cmd)
}

func (f *netFlags) validate() error {
	if err := f.Run.validate(); err != nil {
		return err
	}
	return f.Transform.validate()
}

// classifier loads the classifier the flags name, in --precision.
func (f *netFlags) classifier(ctx context.Context, ios *ioStreams) (*classify.Classifier, error) {
	f.Model.Precision = f.Run.precision()
	return loadClassifier(ctx, ios, &f.Model, f.Transform.options, f.Quiet)
}

// load loads the classifier the flags name and a runner for it.
func (f *netFlags) load(ctx context.Context, ios *ioStreams) (*classify.Classifier, *classify.Runner, error) {
	c, err := f.classifier(ctx, ios)
	if err != nil {
		return nil, nil, err
	}
	return c, c.NewRunner(f.Run.threads()), nil
}

// maxInputBytes bounds what is read of one input into memory, as the
// decoder bounds it.
const maxInputBytes = 1 << 30

// readInput returns the bytes of an input: a regular file, or standard
// input for stdinName.
func readInput(ios *ioStreams, name string) ([]byte, error) {
	var r io.Reader = ios.In
	if name != stdinName {
		f, err := openImage(name)
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

// job is one input on its way through explain, embed or train-head.
type job struct {
	name  string
	photo *image.NRGBA // as decoded, for explain's overlay
	x     *ops.Tensor  // the network's input; nil once run
	err   error
}

// batchRun is one pass of explain, embed or train-head over its inputs.
type batchRun struct {
	size int                // jobs per batch; 0 for --batch-size
	load func(*job)         // sets the job's tensor, or its error
	run  func([]*job) error // runs a batch of loaded jobs
	done func(*job)         // takes each job's result, in input order
	what string             // progress bar label
}

// forBatches loads the inputs in order, hands each batch of loaded jobs to
// run, and then passes every job of the batch, failed ones included, to
// done, so results come out in input order. On a terminal, unless quiet, a
// progress bar counts the jobs done; it is cleared before each call of
// done, which may print. It returns how many jobs failed (in
// load, run or done), and stops early on an error from run or on
// cancellation.
func (f *netFlags) forBatches(ctx context.Context, ios *ioStreams, inputs []input, b batchRun) (failed int, err error) {
	if b.size == 0 {
		b.size = f.Run.BatchSize
	}
	var bar *progress
	if ios.ErrTTY && !f.Quiet && len(inputs) >= progressMin {
		bar = newProgress(ios.ErrOut, len(inputs))
		bar.bar.Describe(b.what)
		defer bar.finish()
	}
	var batch, good []*job
	finished := 0
	flush := func() error {
		if len(good) > 0 {
			if err := b.run(good); err != nil {
				return err
			}
		}
		for _, j := range batch {
			bar.clear()
			b.done(j)
			if j.err != nil {
				failed++
			}
			finished++
			bar.set(finished)
		}
		batch, good = batch[:0], good[:0]
		return nil
	}
	for _, in := range inputs {
		if err := ctx.Err(); err != nil {
			return failed, err
		}
		j := &job{name: in.name, err: in.err}
		if j.err == nil {
			b.load(j)
		}
		batch = append(batch, j)
		if j.err == nil && j.x != nil {
			good = append(good, j)
		}
		if len(good) == b.size {
			if err := flush(); err != nil {
				return failed, err
			}
		}
	}
	return failed, flush()
}

// images returns the jobs' input tensors and drops them from the jobs.
func images(jobs []*job) []*ops.Tensor {
	xs := make([]*ops.Tensor, len(jobs))
	for i, j := range jobs {
		xs[i], j.x = j.x, nil
	}
	return xs
}
