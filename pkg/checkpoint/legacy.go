package checkpoint

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"

	"github.com/nlpodyssey/gopickle/types"
)

// The legacy format starts with three small pickles: this magic number,
// the protocol version and a dict describing the writer's platform.
var (
	legacyMagic = big.NewInt(0).SetBytes([]byte{0x19, 0x50, 0xa8, 0x6a, 0x20, 0xf9, 0x46, 0x9c, 0xfc, 0x6c})
	// legacyMagicPickle is the magic number as torch.save pickles it
	// (protocol 2), to recognise a file cut short within it.
	legacyMagicPickle = []byte("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.")
)

const (
	legacyProtocol = 1001
	// headerPickleLimit bounds the magic-number and protocol pickles.
	headerPickleLimit = 256
	// sysInfoLimit bounds the sys_info pickle.
	sysInfoLimit = 64 << 10
)

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// readLegacy reads the legacy format: the magic number, protocol and
// sys_info pickles, the state dict pickle (whose tensors name storages by
// persistent ids), a pickled list of storage keys, then for each key the
// storage's element count (int64) and raw little-endian elements.
func readLegacy(r io.ReaderAt, size int64) (*Checkpoint, error) {
	cr := &countingReader{r: io.NewSectionReader(r, 0, size)}
	br := bufio.NewReaderSize(cr, 64<<10)
	remaining := func() int64 { return size - (cr.n - int64(br.Buffered())) }
	next := func(limit int64, st *storages) (any, error) {
		data, err := readPickle(br, min(limit, remaining()))
		if err != nil {
			return nil, err
		}
		var load func(any) (any, error)
		if st != nil {
			load = st.load
		}
		return unpickle(data, load)
	}

	magic, err := next(headerPickleLimit, nil)
	if err != nil {
		head := make([]byte, min(size, int64(len(legacyMagicPickle))))
		r.ReadAt(head, 0) // a failed read leaves zeros, which only affect the message
		if len(head) < len(legacyMagicPickle) && bytes.HasPrefix(legacyMagicPickle, head) {
			return nil, fmt.Errorf("%w: the file ends inside the magic number", ErrTruncated)
		}
		return nil, fmt.Errorf("%w: neither a zip archive, a legacy torch file nor safetensors (it starts with %q)", ErrNotCheckpoint, head[:min(len(head), 8)])
	}
	if n, ok := magic.(*big.Int); !ok || n.Cmp(legacyMagic) != 0 {
		return nil, fmt.Errorf("%w: a pickle, but without the torch magic number", ErrNotCheckpoint)
	}
	proto, err := next(headerPickleLimit, nil)
	if err != nil {
		return nil, fmt.Errorf("protocol version: %w", err)
	}
	if proto != legacyProtocol {
		return nil, fmt.Errorf("%w: legacy protocol version %v, want %d", ErrUnsupported, proto, legacyProtocol)
	}
	if _, err := next(sysInfoLimit, nil); err != nil {
		return nil, fmt.Errorf("sys_info: %w", err)
	}

	st := newStorages(true)
	obj, err := next(remaining(), st)
	if err != nil {
		return nil, fmt.Errorf("state dict pickle: %w", err)
	}
	entries, err := stateDict(obj)
	if err != nil {
		return nil, err
	}
	keysObj, err := next(remaining(), nil)
	if err != nil {
		return nil, fmt.Errorf("storage key list: %w", err)
	}
	keys, err := stringList(keysObj)
	if err != nil {
		return nil, err
	}

	need := neededStorages(entries)
	seen := make(map[string]bool, len(keys))
	for _, key := range keys {
		s, ok := st.byKey[key]
		if !ok || seen[key] {
			return nil, fmt.Errorf("%w: storage key list names %q, which the state dict does not use or names twice", ErrCorrupt, key)
		}
		seen[key] = true
		var hdr [8]byte
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return nil, fmt.Errorf("%w: the file ends before storage %s", ErrTruncated, key)
		}
		if n := binary.LittleEndian.Uint64(hdr[:]); n != uint64(s.numel) {
			return nil, fmt.Errorf("%w: storage %s holds %d elements, the state dict says %d", ErrCorrupt, key, n, s.numel)
		}
		nbytes, err := s.dtype.nbytes(s.numel)
		if err != nil {
			return nil, err
		}
		if left := remaining(); nbytes > left {
			return nil, fmt.Errorf("%w: storage %s needs %d bytes, %d remain", ErrTruncated, key, nbytes, left)
		}
		if !need[s] {
			if _, err := br.Discard(int(nbytes)); err != nil {
				return nil, fmt.Errorf("storage %s: %w", key, err)
			}
			continue
		}
		if s.data, err = readStorage(br, s.dtype, s.numel, binary.LittleEndian); err != nil {
			return nil, truncated(err, "inside storage "+key)
		}
	}
	if len(seen) != len(st.byKey) {
		for _, s := range st.order {
			if !seen[s.key] {
				return nil, fmt.Errorf("%w: storage %s has no data", ErrCorrupt, s.key)
			}
		}
	}
	return build("legacy", entries, size)
}

// stringList converts the pickled storage key list.
func stringList(v any) ([]string, error) {
	l, ok := v.(*types.List)
	if !ok {
		return nil, fmt.Errorf("%w: storage key list is %s", ErrCorrupt, describe(v))
	}
	out := make([]string, len(*l))
	for i, k := range *l {
		s, ok := k.(string)
		if !ok {
			return nil, fmt.Errorf("%w: storage key %d is %s", ErrCorrupt, i, describe(k))
		}
		out[i] = s
	}
	return out, nil
}
