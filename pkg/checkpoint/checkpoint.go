// Package checkpoint reads the files model weights are published in into
// float32 tensors, and writes safetensors files.
//
// Load reads both serialisations torch.save produces, the legacy format
// (a sequence of pickles followed by the raw storages, which the published
// Holocron checkpoint uses) and the zip format of PyTorch 1.6 and later,
// and Hugging Face's safetensors, which timm's hub weights use; it tells
// them apart by their content. It parses untrusted files defensively:
// every size read from the file is checked against what the file can hold
// before memory is allocated for it, the work a file can cause is bounded
// by its size, and malformed input yields an error, never a panic.
package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unsafe"

	"github.com/res2net/res2net/pkg/ops"
)

// Errors that classify why a file could not be loaded; test for them with
// errors.Is. The messages returned by Load add the path and the details.
var (
	// ErrNotCheckpoint reports a file that is not a checkpoint at all
	// (empty, a directory, random bytes, some other pickle).
	ErrNotCheckpoint = errors.New("not a PyTorch or safetensors checkpoint")
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
	// Format is "legacy" (torch.save with _use_new_zipfile_serialization=False),
	// "zip" (the default since PyTorch 1.6) or "safetensors".
	Format string
	// Tensors maps each key to its contiguous float32 values; float16,
	// bfloat16 and float64 tensors are converted. The num_batches_tracked
	// counters of BatchNorm are dropped. Each tensor owns its memory.
	Tensors map[string]*ops.Tensor
	// Keys lists the keys of Tensors in file order.
	Keys []string
	// Warnings describes suspicious but loadable content, one sentence per
	// kind of problem: all tensors holding NaN or infinite values make a
	// single warning, which names the first of them.
	Warnings []string
	// NonFinite lists, in file order, the keys of the tensors holding NaN
	// or infinite values.
	NonFinite []string
	// Metadata is the "__metadata__" entry of a safetensors file (nil when
	// the file has none, and for the torch formats).
	Metadata map[string]string
}

// Load reads the checkpoint at path. It unwraps a torch state dict saved
// as {"model": sd} or {"state_dict": sd} and removes the "module." prefix
// nn.DataParallel adds to every key (in every format).
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
	case isSafetensors(head):
		return readSafetensors(r, size)
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
	}
	ck.checkFinite()
	return ck, nil
}

// checkFinite fills NonFinite and adds one warning summarising it.
func (ck *Checkpoint) checkFinite() {
	var first string
	for _, k := range ck.Keys {
		if data := ck.Tensors[k].Data; !allFinite(data) {
			if first == "" {
				nan, inf := countNonFinite(data)
				first = fmt.Sprintf("%q has %d NaN and %d infinite values among %d", k, nan, inf, len(data))
			}
			ck.NonFinite = append(ck.NonFinite, k)
		}
	}
	if len(ck.NonFinite) > 0 {
		ck.Warnings = append(ck.Warnings, fmt.Sprintf("%d of %d tensors hold NaN or infinite values; the first, %s",
			len(ck.NonFinite), len(ck.Keys), first))
	}
}

// float32 bit patterns: a value is NaN or infinite when its exponent
// field is all ones.
const (
	f32ExpMask = 0x7f800000
	f32ExpLow  = 0x00800000 // the exponent's lowest bit
	f32Sign    = 0x80000000
)

// allFinite reports whether data holds no NaN or infinity. It tests two
// values per aligned 64-bit word without branches: adding the exponent's lowest
// bit to an all-ones exponent carries into the sign position, and into it
// only, so OR-ing the carries flags any non-finite value.
func allFinite(data []float32) bool {
	const (
		mask2 = f32ExpMask<<32 | f32ExpMask
		low2  = f32ExpLow<<32 | f32ExpLow
		sign2 = f32Sign<<32 | f32Sign
	)
	var acc uint64
	if len(data) > 0 && uintptr(unsafe.Pointer(&data[0]))%8 != 0 {
		acc = uint64(math.Float32bits(data[0])&f32ExpMask + f32ExpLow)
		data = data[1:]
	}
	var words []uint64
	if len(data) >= 2 { // a *uint64 must lie inside the allocation
		words = unsafe.Slice((*uint64)(unsafe.Pointer(unsafe.SliceData(data))), len(data)/2)
	}
	for i := 0; i+4 <= len(words); i += 4 {
		acc |= (words[i]&mask2 + low2) | (words[i+1]&mask2 + low2) |
			(words[i+2]&mask2 + low2) | (words[i+3]&mask2 + low2)
	}
	for _, w := range words[len(words)&^3:] {
		acc |= w&mask2 + low2
	}
	for _, v := range data[2*len(words):] {
		acc |= uint64(math.Float32bits(v)&f32ExpMask + f32ExpLow)
	}
	return acc&sign2 == 0
}

// countNonFinite counts the NaN and infinite values of data.
func countNonFinite(data []float32) (nan, inf int) {
	for _, v := range data {
		if b := math.Float32bits(v); b&f32ExpMask == f32ExpMask {
			if b&^(f32ExpMask|f32Sign) != 0 {
				nan++
			} else {
				inf++
			}
		}
	}
	return nan, inf
}

// neededStorages returns the set of storages the entries use.
func neededStorages(entries []entry) map[*storageRef]bool {
	need := make(map[*storageRef]bool, len(entries))
	for _, e := range entries {
		need[e.t.storage] = true
	}
	return need
}
