package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/packcache"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/res2net/res2net/pkg/registry"
)

// modelCheckpoint returns the path of a verified cached copy of entry's
// checkpoint, fetched first unless offline (registry.Ensure: the same
// check as fetch's, and what to do when it fails).
func modelCheckpoint(ctx context.Context, ios *ioStreams, entry registry.Entry, offline, quiet bool) (string, error) {
	eo := registry.EnsureOptions{Offline: offline}
	if !quiet {
		eo.Notice = ios.ErrOut
		if ios.ErrTTY {
			eo.Download.Progress = ios.ErrOut
		}
	}
	return registry.Ensure(ctx, entry, eo)
}

// packedDir is the folder of the cache directory that keeps the folded and
// packed weights of the checkpoints loaded (pkg/packcache).
const packedDir = "packed"

// loadClassifier loads the network the model flags name (fetching the
// published checkpoint when no --weights is given) with the transform
// built from the model's.
func loadClassifier(ctx context.Context, ios *ioStreams, m *modelFlags, transform func(registry.Entry) preprocess.Options, quiet bool) (*classify.Classifier, error) {
	entry, err := m.entry()
	if err != nil {
		return nil, err
	}
	base := transform(entry)
	opts := classify.Options{
		Precision:      m.Precision,
		Transform:      base,
		Labels:         entry.Classes,
		LabelsOptional: true, // the published names, for whatever checkpoint --weights gives
		// The checkpoint's own transform (train-head records it) applies
		// unless --resize or --crop changed the model's.
		CheckpointTransform: base.Transform == (&transformFlags{}).options(entry).Transform,
		Warn:                func(msg string) { fmt.Fprintf(ios.ErrOut, "res2net: warning: %s\n", msg) },
	}
	if m.Labels != "" {
		if opts.Labels, err = registry.ReadLabels(m.Labels); err != nil {
			return nil, fmt.Errorf("--labels: %w", err)
		}
		opts.LabelsOptional = false
	}
	path := m.Weights
	if path == "" {
		if path, err = modelCheckpoint(ctx, ios, entry, m.Offline, quiet); err != nil {
			return nil, err
		}
	}
	if dir, err := registry.CacheDir(); err == nil {
		opts.Cache = packcache.New(filepath.Join(dir, packedDir))
	}
	c, err := classify.Load(path, opts)
	if errors.Is(err, classify.ErrLabelCount) {
		return nil, fmt.Errorf("--labels %s: %w", m.Labels, err)
	}
	if err == nil && c.Config().Precision != m.Precision {
		fmt.Fprintf(ios.ErrOut, "res2net: warning: this CPU has no BF16 instructions (AVX512_BF16); running %s\n", c.Config().Precision)
	}
	return c, err
}
