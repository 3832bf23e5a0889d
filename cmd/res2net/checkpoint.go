package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/model"
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
// published checkpoint when no --weights is given) with the labels and
// transform loadOptions chooses.
func loadClassifier(ctx context.Context, ios *ioStreams, m *modelFlags, transform func(registry.Entry) preprocess.Options, quiet bool) (*classify.Classifier, error) {
	entry, err := m.entry()
	if err != nil {
		return nil, err
	}
	opts, err := loadOptions(ios, m, entry, transform)
	if err != nil {
		return nil, err
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

// loadOptions returns the options that load entry's checkpoint (m's
// model) with the transform built from the model's. A --weights file
// without --model gets the labels and transform of the published model
// whose architecture it has (archEntry), or else "class N" names and the
// default model's transform; the checkpoint's own labels and transform
// (train-head records them) come before either, and --labels, --resize
// and --crop before all.
func loadOptions(ios *ioStreams, m *modelFlags, entry registry.Entry, transform func(registry.Entry) preprocess.Options) (classify.Options, error) {
	var labels []string
	if m.Labels != "" {
		var err error
		if labels, err = registry.ReadLabels(m.Labels); err != nil {
			return classify.Options{}, fmt.Errorf("--labels: %w", err)
		}
	}
	options := func(e registry.Entry) classify.Options {
		base := transform(e)
		opts := classify.Options{
			Precision:      m.Precision,
			Transform:      base,
			Labels:         e.Classes,
			LabelsOptional: true, // the published names, for whatever checkpoint --weights gives
			// The checkpoint's own transform (train-head records it) applies
			// unless --resize or --crop changed the model's.
			CheckpointTransform: base.Transform == (&transformFlags{}).options(e).Transform,
			Warn:                func(msg string) { fmt.Fprintf(ios.ErrOut, "res2net: warning: %s\n", msg) },
		}
		if labels != nil {
			opts.Labels, opts.LabelsOptional = labels, false
		}
		return opts
	}
	if m.Weights == "" || m.named() {
		return options(entry), nil
	}
	generic := entry
	generic.Classes = nil
	opts := options(generic)
	opts.ByArchitecture = func(cfg model.Config) (classify.Options, bool) {
		if e, ok := archEntry(cfg); ok {
			return options(e), true
		}
		return classify.Options{}, false
	}
	return opts, nil
}

// archEntry returns the published model whose network is cfg
// (registry.ForConfig), or else one that differs from it only in its
// classes: a fine-tuned head keeps its backbone's transform, and the
// published names, which do not fit it, give way to "class N".
func archEntry(cfg model.Config) (registry.Entry, bool) {
	if e, ok := registry.ForConfig(cfg); ok {
		return e, true
	}
	for _, e := range registry.All() {
		want := e.Config
		want.Classes, want.Precision = cfg.Classes, cfg.Precision
		if want == cfg {
			return e, true
		}
	}
	return registry.Entry{}, false
}
