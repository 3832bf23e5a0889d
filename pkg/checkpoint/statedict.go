package checkpoint

import (
	"fmt"
	"math/big"
	"strings"

	"github.com/nlpodyssey/gopickle/types"
)

// pyClass is any Python class other than the torch ones the loader knows.
// Objects of it accept and ignore their pickled state, so that a checkpoint
// wrapping its state dict beside, say, an argparse.Namespace still loads,
// and a pickled nn.Module can be reported by its class name.
type pyClass struct{ module, name string }

// pyObject is an instance of a pyClass.
type pyObject struct{ class *pyClass }

// Call creates an instance (REDUCE).
func (c *pyClass) Call(...any) (any, error) { return &pyObject{class: c}, nil }

// PyNew creates an instance (NEWOBJ).
func (c *pyClass) PyNew(...any) (any, error) { return &pyObject{class: c}, nil }

// PySetState ignores the object's state (BUILD).
func (*pyObject) PySetState(any) error { return nil }

// entry is one tensor of a state dict.
type entry struct {
	key string
	t   *tensorRef
}

// maxWrapDepth bounds how many {"model": ...} / {"state_dict": ...}
// wrappers are removed.
const maxWrapDepth = 4

// stateDict finds the state dict in an unpickled checkpoint: it removes
// {"state_dict": sd} and {"model": sd} wrappers and a "module." prefix that
// every key shares (nn.DataParallel), drops num_batches_tracked, and checks
// that every other value is a floating-point tensor.
func stateDict(obj any) ([]entry, error) {
	items, ok := dictItems(obj)
	if !ok {
		if isDict(obj) {
			return nil, fmt.Errorf("%w: the state dict has a key that is not a string", ErrNotStateDict)
		}
		return nil, fmt.Errorf("%w: the file holds %s (save model.state_dict() instead)", ErrNotStateDict, describe(obj))
	}
	for range maxWrapDepth {
		inner, found := unwrap(items)
		if !found {
			break
		}
		items = inner
	}
	prefix := sharedPrefix(len(items), func(i int) string { return items[i].key })
	var out []entry
	for _, it := range items {
		key := it.key[len(prefix):]
		t, ok := it.value.(*tensorRef)
		switch {
		case !ok:
			return nil, fmt.Errorf("%w: %q holds %s, not a tensor", ErrNotStateDict, key, describe(it.value))
		case isBatchCounter(key):
		case t.storage.dtype.decode == nil:
			return nil, fmt.Errorf("%w: tensor %q has dtype %s; only float32, float16, bfloat16 and float64 can be loaded",
				ErrUnsupported, key, t.storage.dtype.name)
		default:
			out = append(out, entry{key: key, t: t})
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the state dict holds no tensors", ErrNotStateDict)
	}
	return out, nil
}

// dataParallelPrefix is what nn.DataParallel and DistributedDataParallel
// put before every key of the wrapped model's state dict.
const dataParallelPrefix = "module."

// sharedPrefix returns "module." when all n keys (key(i)) start with it,
// else "".
func sharedPrefix(n int, key func(i int) string) string {
	for i := range n {
		if !strings.HasPrefix(key(i), dataParallelPrefix) {
			return ""
		}
	}
	return dataParallelPrefix
}

// isBatchCounter reports whether key names a BatchNorm's int64 count of
// training steps, which inference never uses and loading drops.
func isBatchCounter(key string) bool { return strings.HasSuffix(key, "num_batches_tracked") }

// unwrap returns the dict under "state_dict" or "model", if any.
func unwrap(items []item) ([]item, bool) {
	for _, name := range []string{"state_dict", "model"} {
		for _, it := range items {
			if it.key == name {
				if inner, ok := dictItems(it.value); ok {
					return inner, true
				}
			}
		}
	}
	return nil, false
}

// item is one key/value pair of a pickled dict.
type item struct {
	key   string
	value any
}

// dictItems returns the pairs of a dict or OrderedDict in insertion order,
// with Python's semantics for repeated keys (the last value wins, in the
// first key's place). ok is false when v is not a dict or has a key that is
// not a string.
func dictItems(v any) (items []item, ok bool) {
	index := map[string]int{}
	add := func(k, val any) bool {
		key, isStr := k.(string)
		if !isStr {
			return false
		}
		if i, seen := index[key]; seen {
			items[i].value = val
			return true
		}
		index[key] = len(items)
		items = append(items, item{key, val})
		return true
	}
	switch d := v.(type) {
	case *types.Dict:
		for _, e := range *d {
			if !add(e.Key, e.Value) {
				return nil, false
			}
		}
	case *types.OrderedDict:
		for el := d.List.Front(); el != nil; el = el.Next() {
			e := el.Value.(*types.OrderedDictEntry)
			if !add(e.Key, e.Value) {
				return nil, false
			}
		}
	default:
		return nil, false
	}
	return items, true
}

// isDict reports whether v is a pickled dict.
func isDict(v any) bool {
	switch v.(type) {
	case *types.Dict, *types.OrderedDict:
		return true
	}
	return false
}

// describe names the Python type of an unpickled value, for messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "None"
	case *types.Dict, *types.OrderedDict:
		return "a dict"
	case *types.List:
		return "a list"
	case *types.Tuple:
		return "a tuple"
	case string:
		return "a string"
	case int, *big.Int:
		return "an int"
	case float64:
		return "a float"
	case bool:
		return "a bool"
	case *tensorRef:
		return "a tensor"
	case *storageRef:
		return "a storage"
	case *dtype:
		return "a storage type (" + v.name + ")"
	case *pyObject:
		return fmt.Sprintf("an object of class %s.%s", v.class.module, v.class.name)
	case *pyClass:
		return fmt.Sprintf("the class %s.%s", v.module, v.name)
	}
	return fmt.Sprintf("a value of Go type %T", v)
}
