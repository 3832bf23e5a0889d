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
// of earlier requests without unbounded memory.
func (s *Server) decodeAll(ctx context.Context, m *served, images []image) ([][]float32, error) {
	out := make([][]float32, len(images))
	errs := make([]error, len(images))
	var wg sync.WaitGroup
	for i, img := range images {
		select {
		case s.decode <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return nil, ctx.Err()
		}
		wg.Go(func() {
			defer func() { <-s.decode }()
			x, err := m.classifier.Decode(bytes.NewReader(img.data), img.name)
			if err != nil {
				errs[i] = badRequest("%v", err)
				return
			}
			if !ops.SameShape(x.Shape, m.shape) {
				errs[i] = fmt.Errorf("%s: preprocessing gave shape %s, want %s", img.name, ops.ShapeString(x.Shape), ops.ShapeString(m.shape))
				return
			}
			out[i] = x.Data
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// classify decodes the images, runs them through the model's batcher and
// returns their logits.
func (s *Server) classify(ctx context.Context, m *served, images []image) ([][]float32, error) {
	if len(images) > s.opts.Queue {
		return nil, badRequest("%d images in one request, more than the queue holds (%d)", len(images), s.opts.Queue)
	}
	inputs, err := s.decodeAll(ctx, m, images)
	if err != nil {
		return nil, err
	}
	return m.batcher.infer(ctx, inputs)
}

// rank returns the top-k predictions of each row of logits.
func (m *served) rank(logits [][]float32, k int) [][]classify.Prediction {
	x := ops.New(len(logits), len(m.labels))
	for i, row := range logits {
		copy(x.Data[i*len(m.labels):], row)
	}
	return m.classifier.Rank(x, k)
}
