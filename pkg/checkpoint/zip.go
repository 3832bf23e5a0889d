package checkpoint

import (
	"archive/zip"
	"bufio"
	"bytes"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

const (
	// maxDeflateRatio is the largest expansion deflate can achieve; it
	// bounds what a compressed zip entry may claim to hold.
	maxDeflateRatio = 1032
	// maxZipExpansion bounds the bytes read out of an archive, all entries
	// together, as a multiple of its size. torch.save stores entries
	// uncompressed (ratio 1); an archive recompressed by another tool
	// rarely exceeds 10.
	maxZipExpansion = 64
	// minZipBudget is what any archive, however small, may expand to.
	minZipBudget = 16 << 20
)

// readZip reads the zip format: <archive>/data.pkl holds the state dict,
// whose tensors name storages stored as <archive>/data/<key>, where
// <archive> is the directory of the first entry. The storages are in the
// writer's byte order, recorded in <archive>/byteorder since PyTorch 2.1
// (little-endian when absent).
func readZip(r io.ReaderAt, size int64) (*Checkpoint, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		if errors.Is(err, zip.ErrFormat) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, fmt.Errorf("%w: zip archive without its central directory (%v)", ErrTruncated, err)
		}
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if len(zr.File) == 0 {
		return nil, fmt.Errorf("%w: empty zip archive", ErrNotCheckpoint)
	}
	files := make(map[string]*zip.File, len(zr.File))
	for _, f := range zr.File {
		files[f.Name] = f
	}
	prefix, _, _ := strings.Cut(zr.File[0].Name, "/")
	prefix += "/"
	for name := range files {
		if name == prefix+"constants.pkl" || strings.HasPrefix(name, prefix+"code/") {
			return nil, ErrTorchScript
		}
	}
	if err := checkOverlap(zr.File, size); err != nil {
		return nil, err
	}
	za := &zipArchive{files: files, prefix: prefix, size: size, budget: max(maxZipExpansion*size, minZipBudget)}
	pf, ok := files[prefix+"data.pkl"]
	if !ok {
		return nil, fmt.Errorf("%w: zip archive without %sdata.pkl", ErrNotCheckpoint, prefix)
	}
	pkl, err := za.readAll(pf)
	if err != nil {
		return nil, err
	}
	order, err := za.byteOrder()
	if err != nil {
		return nil, err
	}
	st := newStorages(false)
	entries, err := parseStateDict(pkl, st)
	if err != nil {
		return nil, err
	}
	need := neededStorages(entries)
	// Every size is checked, and charged to the budget, before any
	// storage is allocated.
	var read []*storageRef
	for _, s := range st.order {
		name := prefix + "data/" + s.key
		f, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("%w: storage entry %s is missing", ErrCorrupt, name)
		}
		if !need[s] {
			continue
		}
		nbytes, err := s.dtype.nbytes(s.numel)
		if err != nil {
			return nil, fmt.Errorf("entry %s: %w", name, err)
		}
		if err := za.checkSize(f, nbytes); err != nil {
			return nil, fmt.Errorf("entry %s: storage of %d %s elements: %w", name, s.numel, s.dtype.name, err)
		}
		read = append(read, s)
	}
	for _, s := range read {
		f := files[prefix+"data/"+s.key]
		if s.data, err = readZipStorage(f, s, order); err != nil {
			return nil, fmt.Errorf("entry %s: %w", f.Name, err)
		}
	}
	return build("zip", entries, size)
}

// parseStateDict scans and unpickles a data.pkl and finds its state dict.
func parseStateDict(pkl []byte, st *storages) ([]entry, error) {
	data, err := readPickle(bufio.NewReader(bytes.NewReader(pkl)), int64(len(pkl)))
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	obj, err := unpickle(data, st.load)
	if err != nil {
		return nil, fmt.Errorf("data.pkl: %w", err)
	}
	return stateDict(obj)
}

// checkOverlap fails when the data of two entries share bytes, as in an
// archive whose directory lists one compressed entry under many names to
// multiply its expansion. Entries without data cannot overlap.
func checkOverlap(files []*zip.File, size int64) error {
	type span struct {
		start, end uint64
		name       string
	}
	spans := make([]span, 0, len(files))
	for _, f := range files {
		if f.CompressedSize64 == 0 {
			continue
		}
		off, err := f.DataOffset()
		if err != nil {
			return fmt.Errorf("%w: entry %s: %v", ErrCorrupt, f.Name, err)
		}
		if off < 0 || off > size || f.CompressedSize64 > uint64(size-off) {
			return fmt.Errorf("%w: entry %s: %d bytes at offset %d do not fit in the file", ErrTruncated, f.Name, f.CompressedSize64, off)
		}
		spans = append(spans, span{uint64(off), uint64(off) + f.CompressedSize64, f.Name})
	}
	slices.SortFunc(spans, func(a, b span) int { return cmp.Compare(a.start, b.start) })
	for i := 1; i < len(spans); i++ {
		if a, b := spans[i-1], spans[i]; b.start < a.end {
			return fmt.Errorf("%w: zip entries %s and %s overlap (bytes %d to %d)", ErrCorrupt, a.name, b.name, b.start, min(a.end, b.end))
		}
	}
	return nil
}

// zipArchive reads entries of a torch zip archive of the given file size.
type zipArchive struct {
	files  map[string]*zip.File
	prefix string
	size   int64
	// budget is how many more bytes may be read out of the entries.
	budget int64
}

// checkSize fails unless entry f can hold want bytes, judged from the
// sizes in the archive: a stored entry's data must lie within the file, a
// compressed one cannot expand beyond what deflate allows, and all entries
// read together stay within the budget, which the sizes are charged to.
// want < 0 only checks f's own claims.
func (za *zipArchive) checkSize(f *zip.File, want int64) error {
	if want >= 0 && f.UncompressedSize64 != uint64(want) {
		return fmt.Errorf("%w: holds %d bytes, want %d", ErrCorrupt, f.UncompressedSize64, want)
	}
	if f.UncompressedSize64 > uint64(za.budget) {
		return fmt.Errorf("%w: %d bytes, beyond what the archive may expand to (%d times its size, at least %d MiB, all entries together)",
			ErrUnsupported, f.UncompressedSize64, maxZipExpansion, minZipBudget>>20)
	}
	za.budget -= int64(f.UncompressedSize64)
	switch f.Method {
	case zip.Store:
		off, err := f.DataOffset()
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if off > za.size || f.CompressedSize64 != f.UncompressedSize64 || f.CompressedSize64 > uint64(za.size-off) {
			return fmt.Errorf("%w: entry of %d bytes does not fit in the file", ErrTruncated, f.UncompressedSize64)
		}
	case zip.Deflate:
		if f.CompressedSize64 > uint64(za.size) || f.UncompressedSize64/maxDeflateRatio > f.CompressedSize64 {
			return fmt.Errorf("%w: compressed entry claims %d bytes from %d", ErrCorrupt, f.UncompressedSize64, f.CompressedSize64)
		}
	default:
		return fmt.Errorf("%w: zip compression method %d", ErrUnsupported, f.Method)
	}
	return nil
}

// readAll returns the contents of a small entry (data.pkl, byteorder).
func (za *zipArchive) readAll(f *zip.File) ([]byte, error) {
	if err := za.checkSize(f, -1); err != nil {
		return nil, fmt.Errorf("entry %s: %w", f.Name, err)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("entry %s: %w: %v", f.Name, ErrCorrupt, err)
	}
	defer rc.Close()
	data, err := io.ReadAll(io.LimitReader(rc, int64(f.UncompressedSize64)+1))
	if err != nil {
		return nil, fmt.Errorf("entry %s: %w", f.Name, zipReadErr(err))
	}
	if uint64(len(data)) != f.UncompressedSize64 {
		return nil, fmt.Errorf("entry %s: %w: holds %d bytes, the directory says %d", f.Name, ErrCorrupt, len(data), f.UncompressedSize64)
	}
	return data, nil
}

// byteOrder reads the optional byteorder record.
func (za *zipArchive) byteOrder() (binary.ByteOrder, error) {
	f, ok := za.files[za.prefix+"byteorder"]
	if !ok {
		return binary.LittleEndian, nil
	}
	data, err := za.readAll(f)
	if err != nil {
		return nil, err
	}
	switch string(data) {
	case "little":
		return binary.LittleEndian, nil
	case "big":
		return binary.BigEndian, nil
	}
	return nil, fmt.Errorf("%w: byte order %q", ErrCorrupt, data)
}

// readZipStorage reads storage s from entry f, whose size has been checked.
func readZipStorage(f *zip.File, s *storageRef, order binary.ByteOrder) ([]float32, error) {
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	defer rc.Close()
	data, err := readStorage(rc, s.dtype, s.numel, order)
	if err != nil {
		return nil, zipReadErr(err)
	}
	// Reading to the end makes archive/zip verify the entry's CRC-32.
	if _, err := rc.Read(make([]byte, 1)); err != io.EOF {
		return nil, zipReadErr(err)
	}
	return data, nil
}

// zipReadErr classifies an error reading an entry's data.
func zipReadErr(err error) error {
	switch {
	case err == nil:
		return fmt.Errorf("%w: entry longer than its directory record", ErrCorrupt)
	case errors.Is(err, zip.ErrChecksum):
		return fmt.Errorf("%w: CRC-32 mismatch", ErrCorrupt)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return truncated(err, "inside a zip entry")
	}
	return fmt.Errorf("%w: %v", ErrCorrupt, err)
}
