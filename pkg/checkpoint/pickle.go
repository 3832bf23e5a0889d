package checkpoint

import (
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/nlpodyssey/gopickle/pickle"
	"github.com/nlpodyssey/gopickle/types"
)

// truncated turns an early end of the input into ErrTruncated; where says
// what the input ended in.
func truncated(err error, where string) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: the data ends %s", ErrTruncated, where)
	}
	return err
}

// unpickle runs gopickle over one pickle scanned by readPickle. gopickle can
// panic on malformed input (it indexes its stacks without checks), so the
// panic is turned into an error here, around the library call only.
func unpickle(data []byte, persistentLoad func(any) (any, error)) (obj any, err error) {
	defer func() {
		if p := recover(); p != nil {
			obj, err = nil, fmt.Errorf("%w: malformed pickle (%v)", ErrCorrupt, p)
		}
	}()
	u := pickle.NewUnpickler(bytes.NewReader(data))
	u.FindClass = findClass
	u.PersistentLoad = persistentLoad
	obj, err = u.Load()
	if errors.Is(err, ErrUnsupported) { // from the storage and tensor hooks
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("%w: malformed pickle: %v", ErrCorrupt, err)
	}
	return obj, nil
}

// findClass resolves the globals a torch checkpoint refers to; any other
// becomes a pyClass.
func findClass(module, name string) (any, error) {
	switch module + "." + name {
	case "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2":
		return rebuildTensor{}, nil
	case "torch._utils._rebuild_parameter":
		return rebuildParameter{}, nil
	}
	if module == "torch" {
		if dt, ok := storageDTypes[name]; ok {
			return dt, nil
		}
	}
	return &pyClass{module: module, name: name}, nil
}

// storageRef is a storage named by a persistent id in the pickle; its data
// lives outside the pickle (after it in the legacy format, in its own zip
// entry otherwise).
type storageRef struct {
	key   string
	dtype *dtype
	numel int64
	// data is the storage converted to float32, once read.
	data []float32
	// claimed is set when a tensor took data as its own buffer.
	claimed bool
}

// tensorRef is what torch._utils._rebuild_tensor_v2 produces: a view of a
// storage.
type tensorRef struct {
	storage *storageRef
	offset  int64
	size    []int64
	stride  []int64
}

// rebuildTensor stands for torch._utils._rebuild_tensor{,_v2}:
// (storage, storage_offset, size, stride, ...).
type rebuildTensor struct{}

// Call builds a tensorRef from the pickled arguments.
func (rebuildTensor) Call(args ...any) (any, error) {
	if len(args) < 4 {
		return nil, fmt.Errorf("_rebuild_tensor: %d arguments, want at least 4", len(args))
	}
	st, ok := args[0].(*storageRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor: storage is %s", describe(args[0]))
	}
	off, ok := args[1].(int)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor: storage offset is %s", describe(args[1]))
	}
	size, err := intTuple(args[2], "size")
	if err != nil {
		return nil, err
	}
	stride, err := intTuple(args[3], "stride")
	if err != nil {
		return nil, err
	}
	return &tensorRef{storage: st, offset: int64(off), size: size, stride: stride}, nil
}

// rebuildParameter stands for torch._utils._rebuild_parameter(data, ...),
// used when an nn.Parameter (rather than a plain tensor) was saved.
type rebuildParameter struct{}

// Call returns the parameter's tensor.
func (rebuildParameter) Call(args ...any) (any, error) {
	if len(args) < 1 {
		return nil, errors.New("_rebuild_parameter: no arguments")
	}
	t, ok := args[0].(*tensorRef)
	if !ok {
		return nil, fmt.Errorf("_rebuild_parameter: data is %s", describe(args[0]))
	}
	return t, nil
}

// intTuple converts a pickled tuple of ints (torch.Size) to int64s.
func intTuple(v any, what string) ([]int64, error) {
	t, ok := v.(*types.Tuple)
	if !ok {
		return nil, fmt.Errorf("_rebuild_tensor: %s is %s, want a tuple", what, describe(v))
	}
	out := make([]int64, t.Len())
	for i := range out {
		n, ok := t.Get(i).(int)
		if !ok {
			return nil, fmt.Errorf("_rebuild_tensor: %s[%d] is %s, want an int", what, i, describe(t.Get(i)))
		}
		out[i] = int64(n)
	}
	return out, nil
}

// storages resolves persistent ids to storageRefs, one per key.
type storages struct {
	byKey map[string]*storageRef
	order []*storageRef
	// legacy selects the legacy id layout, which has a sixth field for
	// storage views.
	legacy bool
}

// newStorages returns an empty resolver for the legacy or zip format.
func newStorages(legacy bool) *storages {
	return &storages{byKey: map[string]*storageRef{}, legacy: legacy}
}

// load is the unpickler's PersistentLoad: it decodes
// ('storage', storage_type, key, location, numel[, view_metadata]), and in
// the legacy format ('module', class, source file, source), which
// torch.save(model) writes for each module class.
func (s *storages) load(pid any) (any, error) {
	t, ok := pid.(*types.Tuple)
	if ok && s.legacy && t.Len() >= 2 && t.Get(0) == "module" {
		return t.Get(1), nil
	}
	if !ok || t.Len() < 5 {
		return nil, fmt.Errorf("persistent id %s is not a storage tuple", describe(pid))
	}
	if kind, _ := t.Get(0).(string); kind != "storage" {
		return nil, fmt.Errorf("persistent id of kind %v, want storage", t.Get(0))
	}
	dt, okT := t.Get(1).(*dtype)
	key, okK := t.Get(2).(string)
	numel, okN := t.Get(4).(int)
	if !okT {
		if c, isClass := t.Get(1).(*pyClass); isClass {
			return nil, fmt.Errorf("%w: storage type %s.%s", ErrUnsupported, c.module, c.name)
		}
		return nil, fmt.Errorf("storage type is %s", describe(t.Get(1)))
	}
	if !okK || !okN || numel < 0 {
		return nil, fmt.Errorf("storage id (%v, %v) is not a (key, element count) pair", t.Get(2), t.Get(4))
	}
	if s.legacy && t.Len() > 5 && t.Get(5) != nil {
		return nil, fmt.Errorf("%w: storage %s is a view of another storage, as old PyTorch versions wrote", ErrUnsupported, key)
	}
	if st, ok := s.byKey[key]; ok {
		if st.dtype != dt || st.numel != int64(numel) {
			return nil, fmt.Errorf("storage %s declared twice with different types or sizes", key)
		}
		return st, nil
	}
	st := &storageRef{key: key, dtype: dt, numel: int64(numel)}
	s.byKey[key] = st
	s.order = append(s.order, st)
	return st, nil
}
