package checkpoint

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxDeflateRatio is the largest expansion deflate can achieve; it bounds
// what a compressed zip entry may claim to hold.
const maxDeflateRatio = 1032

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
	za := zipArchive{files: files, prefix: prefix, size: size}
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
	for _, s := range st.order {
		name := prefix + "data/" + s.key
		f, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("%w: storage entry %s is missing", ErrCorrupt, name)
		}
		if need[s] {
			if s.data, err = za.readStorage(f, s, order); err != nil {
				return nil, fmt.Errorf("entry %s: %w", name, err)
			}
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

// zipArchive reads entries of a torch zip archive of the given file size.
type zipArchive struct {
	files  map[string]*zip.File
	prefix string
	size   int64
}

// checkSize fails unless entry f can hold want bytes, judged from the
// sizes in the archive: a stored entry's data must lie within the file, a
// compressed one cannot expand beyond what deflate allows. want < 0 only
// checks f's own claims.
func (za zipArchive) checkSize(f *zip.File, want int64) error {
	if want >= 0 && f.UncompressedSize64 != uint64(want) {
		return fmt.Errorf("%w: holds %d bytes, want %d", ErrCorrupt, f.UncompressedSize64, want)
	}
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
func (za zipArchive) readAll(f *zip.File) ([]byte, error) {
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
func (za zipArchive) byteOrder() (binary.ByteOrder, error) {
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

// readStorage reads storage s from entry f.
func (za zipArchive) readStorage(f *zip.File, s *storageRef, order binary.ByteOrder) ([]float32, error) {
	nbytes, err := s.dtype.nbytes(s.numel)
	if err != nil {
		return nil, err
	}
	if err := za.checkSize(f, nbytes); err != nil {
		return nil, fmt.Errorf("storage of %d %s elements: %w", s.numel, s.dtype.name, err)
	}
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
