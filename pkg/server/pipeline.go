package server

import (
	"bytes"
	"context"
	"fmt"
	"sync"

	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/ops"
)

// image is one encoded image of a request and the name errors call it by.
type image struct {
	name string
	data []byte
}

// decodeAll preprocesses the images in parallel, at most opts.Decoders at
// once across all requests, so that decoding overlaps the forward passes
// of earlier requests without unbounded memory. It returns each image's
// tensor or error (a 400), or an error for the whole request.
func (s *Server) decodeAll(ctx context.Context, m *served, images []image) ([][]float32, []error, error) {
	out := make([][]float32, len(images))
	errs := make([]error, len(images))
	var wg sync.WaitGroup
	defer wg.Wait()
	for i, img := range images {
		select {
		case s.decode <- struct{}{}:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-s.decode }()
			// A panic here would end the process, not just the request:
			// net/http recovers only the handler's own goroutine.
			defer func() {
				if p := recover(); p != nil {
					errs[i] = fmt.Errorf("decoding %s failed: %v", img.name, p)
				}
			}()
			x, err := m.classifier.Decode(bytes.NewReader(img.data), img.name)
			switch {
			case err != nil:
				errs[i] = badRequest("%v", err)
			case !ops.SameShape(x.Shape, m.shape):
				errs[i] = fmt.Errorf("%s: preprocessing gave shape %s, want %s", img.name, ops.ShapeString(x.Shape), ops.ShapeString(m.shape))
			default:
				out[i] = x.Data
			}
		})
	}
	return out, errs, nil
}

// checkCount refuses a request of more images than the queue holds: it
// could never be admitted.
func (s *Server) checkCount(n int) error {
	if n > s.opts.Queue {
		return badRequest("%d images in one request, more than the queue holds (%d)", n, s.opts.Queue)
	}
	return nil
}

// classify decodes the images, runs them through the model's batcher and
// returns their logits; any image that cannot be decoded fails the request.
func (s *Server) classify(ctx context.Context, m *served, images []image) ([][]float32, error) {
	logits, errs, err := s.classifyEach(ctx, m, images)
	if err != nil {
		return nil, err
	}
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return logits, nil
}

// classifyEach is classify with an error per image that could not be
// decoded; the others are still classified.
func (s *Server) classifyEach(ctx context.Context, m *served, images []image) ([][]float32, []error, error) {
	if err := s.checkCount(len(images)); err != nil {
		return nil, nil, err
	}
	inputs, errs, err := s.decodeAll(ctx, m, images)
	if err != nil {
		return nil, nil, err
	}
	var good [][]float32
	for i, x := range inputs {
		if errs[i] == nil {
			good = append(good, x)
		}
	}
	logits := make([][]float32, len(images))
	if len(good) == 0 {
		return logits, errs, nil
	}
	done, err := m.batcher.infer(ctx, good)
	if err != nil {
		return nil, nil, err
	}
	for i := range logits {
		if errs[i] == nil {
			logits[i], done = done[0], done[1:]
		}
	}
	return logits, errs, nil
}

// rank returns the top-k predictions of each row of logits.
func (m *served) rank(logits [][]float32, k int) [][]classify.Prediction {
	x := ops.New(len(logits), len(m.labels))
	for i, row := range logits {
		copy(x.Data[i*len(m.labels):], row)
	}
	return m.classifier.Rank(x, k)
}
