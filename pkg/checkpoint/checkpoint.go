// Package checkpoint reads the files model weights are published in into
// float32 tensors.
//
// Load reads both serialisations torch.save produces: the legacy format
// (a sequence of pickles followed by the raw storages, which the published
// checkpoint uses) and the zip format of PyTorch 1.6 and later. It parses
// untrusted files defensively: every size read from the file is checked
// against what the file can hold before memory is allocated for it, and
// malformed input yields an error, never a panic.
package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/res2net/res2net/pkg/ops"
)

// Errors that classify why a file could not be loaded; test for them with
// errors.Is. The messages returned by Load add the path and the details.
var (
	// ErrNotCheckpoint reports a file that is not a PyTorch checkpoint at
	// all (empty, a directory, random bytes, some other pickle).
	ErrNotCheckpoint = errors.New("not a PyTorch checkpoint")
	// ErrTruncated reports a file that ends before the data it announces.
	ErrTruncated = errors.New("truncated checkpoint")
	// ErrCorrupt reports a checkpoint whose parts are inconsistent (a
	// malformed pickle, a missing zip entry, a storage of the wrong size).
	ErrCorrupt = errors.New("corrupt checkpoint")
	// ErrTorchScript reports a TorchScript archive (torch.jit.save), which
	// holds code as well as weights.
	ErrTorchScript = errors.New("TorchScript archive, not a state dict (load it in Python and torch.save(model.state_dict()))")
	// ErrTarFormat reports a file in the tar format of PyTorch before 0.1.10.
	ErrTarFormat = errors.New("tar-format checkpoint of PyTorch before 0.1.10 (load it in Python and save it again)")
	// ErrNotStateDict reports a checkpoint that holds something other than
	// a state dict, such as a pickled nn.Module.
	ErrNotStateDict = errors.New("not a state dict")
	// ErrUnsupported reports a checkpoint that uses a feature this loader
	// does not read, such as an integer weight tensor.
	ErrUnsupported = errors.New("unsupported checkpoint content")
)

// Checkpoint is a state dict read from a file.
type Checkpoint struct {
	// Format is "legacy" (torch.save with _use_new_zipfile_serialization=False)
	// or "zip" (the default since PyTorch 1.6).
	Format string
	// Tensors maps each key to its contiguous float32 values; float16,
	// bfloat16 and float64 tensors are converted. The num_batches_tracked
	// counters of BatchNorm are dropped. Each tensor owns its memory.
	Tensors map[string]*ops.Tensor
	// Keys lists the keys of Tensors in file order.
	Keys []string
	// Warnings describes suspicious but loadable content, such as NaN or
	// infinite weights.
	Warnings []string
}

// Load reads the checkpoint at path. It unwraps a state dict saved as
// {"model": sd} or {"state_dict": sd} and removes the "module." prefix
// nn.DataParallel adds to every key.
func Load(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if fi.IsDir() {
		return nil, fmt.Errorf("load %s: %w: it is a directory", path, ErrNotCheckpoint)
	}
	ck, err := Read(f, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	return ck, nil
}

// Read reads a checkpoint of size bytes from r, like Load.
func Read(r io.ReaderAt, size int64) (*Checkpoint, error) {
	if size == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrNotCheckpoint)
	}
	head := make([]byte, min(size, 512))
	if _, err := r.ReadAt(head, 0); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	zipMagic := []byte("PK\x03\x04")
	switch {
	case bytes.HasPrefix(head, zipMagic), bytes.HasPrefix(head, []byte("PK\x05\x06")):
		return readZip(r, size)
	case len(head) < len(zipMagic) && bytes.HasPrefix(zipMagic, head):
		return nil, fmt.Errorf("%w: the file ends inside the zip signature", ErrTruncated)
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return nil, ErrTarFormat
	}
	return readLegacy(r, size)
}

// build turns the state dict entries, whose storages have been read, into
// a Checkpoint. Copies made for views may together hold at most as many
// elements as the file has bytes.
func build(format string, entries []entry, fileSize int64) (*Checkpoint, error) {
	ck := &Checkpoint{Format: format, Tensors: make(map[string]*ops.Tensor, len(entries))}
	budget := fileSize
	for _, e := range entries {
		if _, dup := ck.Tensors[e.key]; dup {
			// Only possible when stripping "module." made two keys equal.
			return nil, fmt.Errorf("%w: key %q appears twice", ErrCorrupt, e.key)
		}
		data, err := e.t.materialize(&budget)
		if err != nil {
			return nil, fmt.Errorf("%w: tensor %q: %v", ErrCorrupt, e.key, err)
		}
		shape := make([]int, len(e.t.size))
		for i, s := range e.t.size {
			shape[i] = int(s)
		}
		ck.Tensors[e.key] = &ops.Tensor{Shape: shape, Data: data}
		ck.Keys = append(ck.Keys, e.key)
		if w := nonFinite(data); w != "" {
			ck.Warnings = append(ck.Warnings, fmt.Sprintf("%s: %s", e.key, w))
		}
	}
	return ck, nil
}

// nonFinite describes the NaN and infinite values of data, or returns "".
func nonFinite(data []float32) string {
	var nan, inf int
	for _, v := range data {
		switch {
		case v != v:
			nan++
		case math.IsInf(float64(v), 0):
			inf++
		}
	}
	if nan+inf == 0 {
		return ""
	}
	return fmt.Sprintf("%d NaN and %d infinite values among %d", nan, inf, len(data))
}

// neededStorages returns the set of storages the entries use.
func neededStorages(entries []entry) map[*storageRef]bool {
	need := make(map[*storageRef]bool, len(entries))
	for _, e := range entries {
		need[e.t.storage] = true
	}
	return need
}
