package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/res2net/res2net/pkg/registry"
)

// defaultSource is where predict and bench fetch the checkpoint when none
// is cached; tests point it at a local server.
var defaultSource = registry.Default.Source()

// defaultCheckpoint returns the cached default checkpoint's path, fetching
// it first unless offline. Fetch renames into place only after verifying,
// so a file at the final path needs no second hash on every start-up.
func defaultCheckpoint(ctx context.Context, ios *ioStreams, offline, quiet bool) (string, error) {
	dir, err := registry.CacheDir()
	if err != nil {
		return "", err
	}
	name, err := defaultSource.FileName()
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	if _, err := os.Stat(p); err == nil {
		return p, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	if offline {
		return "", fmt.Errorf("no cached checkpoint at %s (run 'res2net fetch', or pass --weights)", p)
	}
	if !quiet {
		fmt.Fprintf(ios.ErrOut, "Checkpoint not cached; downloading %s\n", defaultSource.URL)
	}
	return fetchInto(ctx, ios, defaultSource, false, quiet)
}

// loadClassifier loads the network the model flags name (fetching the
// published checkpoint when no --weights is given) with the transform
// built from the model's.
func loadClassifier(ctx context.Context, ios *ioStreams, m *modelFlags, transform func(registry.Entry) preprocess.Options, quiet bool) (*classify.Classifier, error) {
	entry, err := m.entry()
	if err != nil {
		return nil, err
	}
	opts := classify.Options{
		Transform:      transform(entry),
		Labels:         entry.Classes,
		LabelsOptional: true, // the published names, for whatever checkpoint --weights gives
		Warn:           func(msg string) { fmt.Fprintf(ios.ErrOut, "res2net: warning: %s\n", msg) },
	}
	if m.Labels != "" {
		if opts.Labels, err = readLabels(m.Labels); err != nil {
			return nil, err
		}
		opts.LabelsOptional = false
	}
	path := m.Weights
	if path == "" {
		if path, err = defaultCheckpoint(ctx, ios, m.Offline, quiet); err != nil {
			return nil, err
		}
	}
	c, err := classify.Load(path, opts)
	if errors.Is(err, classify.ErrLabelCount) {
		return nil, fmt.Errorf("--labels %s: %w", m.Labels, err)
	}
	return c, err
}

// maxLabels bounds a --labels file: far more classes than any classifier.
const maxLabels = 1 << 20

// readLabels reads class names, one a line; blank lines at the end are
// ignored, others are names.
func readLabels(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--labels: %w", err)
	}
	defer f.Close()
	var labels []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if len(labels) == maxLabels {
			return nil, fmt.Errorf("--labels %s: more than %d lines", path, maxLabels)
		}
		labels = append(labels, strings.TrimSpace(sc.Text()))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--labels %s: %w", path, err)
	}
	for len(labels) > 0 && labels[len(labels)-1] == "" {
		labels = labels[:len(labels)-1]
	}
	if len(labels) == 0 {
		return nil, fmt.Errorf("--labels %s: no labels in the file", path)
	}
	return labels, nil
}
