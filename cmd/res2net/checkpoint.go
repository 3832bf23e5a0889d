package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"

	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/registry"
)

// network is the model built from a checkpoint, with its class names. It
// keeps no reference to the checkpoint's tensors, whose memory the model
// has folded and packed.
type network struct {
	Net    *model.Network
	Model  *model.Runner // a runner on Net, for the command's one goroutine
	Labels []string
}

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

// loadNetwork loads the checkpoint at path (the cached default when empty)
// and builds the model, with labels from the registry when the class count
// matches it.
func loadNetwork(ctx context.Context, ios *ioStreams, path string, offline, quiet bool) (*network, error) {
	if path == "" {
		var err error
		if path, err = defaultCheckpoint(ctx, ios, offline, quiet); err != nil {
			return nil, err
		}
	}
	// Packing the weights copies them while the checkpoint's copy is still
	// live; collecting more often than usual until the model is built keeps
	// the peak near one copy instead of two.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	ckpt, err := checkpoint.Load(path)
	if err != nil {
		return nil, err
	}
	for _, w := range ckpt.Warnings {
		fmt.Fprintf(ios.ErrOut, "res2net: warning: %s: %s\n", path, w)
	}
	m, err := newModel(ckpt)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &network{Net: m, Model: m.NewRunner(), Labels: labels(m.Config().Classes)}, nil
}

// labels names n classes: the registry's names when they fit, else "class i".
func labels(n int) []string {
	if n == len(registry.Default.Classes) {
		return registry.Default.Classes
	}
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("class %d", i)
	}
	return out
}

// newModel builds Res2Net-50 26w x 4s from the checkpoint, or, when the
// checkpoint has the same layout with other widths, that narrower model. The
// error stays the one against the published architecture, the clearest for
// a damaged checkpoint.
func newModel(ckpt *checkpoint.Checkpoint) (*model.Network, error) {
	cfg := model.Res2Net50()
	cfg.Classes = 0 // from the checkpoint's head
	m, err := model.New(cfg, ckpt.Tensors)
	if err == nil {
		return m, nil
	}
	if inferred, ierr := model.InferConfig(ckpt.Tensors); ierr == nil && inferred.Planes != model.Res2Net50().Planes {
		if m, ierr := model.New(inferred, ckpt.Tensors); ierr == nil {
			return m, nil
		}
	}
	return nil, err
}
