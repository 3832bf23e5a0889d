// Package packcache keeps a network's weights as model.New leaves them
// (BatchNorm folded, packed for this CPU's GEMM kernels) in a file beside
// the checkpoint's cache, so that the next run maps that file instead of
// reading, folding and packing the checkpoint: start-up then costs a few
// milliseconds instead of a few hundred.
//
// A cache file is used only when everything it was built from is
// unchanged, and never when it is damaged:
//
//   - The checkpoint: its size, modification and change times, device and
//     inode must be those it had when it was read (the trust that download
//     stamps already place in size and time, and any write or rename moves
//     the change time). A checkpoint changed less than MinAge before it was
//     read is not cached, since a second change within the file system's
//     timestamp resolution would leave the times equal.
//   - The code: the file records the layout of this build's packing on this
//     CPU, a digest of a small network built, folded and packed by the
//     running code (see Layout), so a change to the kernels, the packing or
//     the folding makes every cache file stale.
//   - The bytes: a CRC-32 of every 4 MiB of the weights and of the header,
//     checked on every load (a few milliseconds), catch truncation and
//     flipped bits; every size and offset is checked against the file
//     before use.
//
// Files are written to a temporary name and renamed, never changed in
// place, so concurrent runs see the old file or the new one, never half of
// one, and a process that mapped the old file keeps reading it. Each store
// removes the files of checkpoints that are gone or changed, and the
// oldest beyond a few; clearing the directory is safe at any time.
package packcache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"
	"unsafe"

	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/ops/gemm"
)

// Version is the version of the file format; files of another are stale.
const Version = 1

// DefaultMinAge is New's MinAge: longer than the coarsest timestamps of
// common file systems (FAT's 2 s; ext3 and HFS+ have 1 s).
const DefaultMinAge = 2 * time.Second

const (
	magic      = "R2NPACK\n"
	prefixSize = 32       // magic, version, header CRC, header length, data offset
	maxHeader  = 16 << 20 // a header lists ~500 arrays: far below this
	chunkSize  = 4 << 20  // bytes per data CRC: enough chunks to verify in parallel
	pageSize   = 4096     // the data starts on a page, for mapping
	alignBytes = 64       // every array starts on a cache line
)

// ErrStale reports a cache file built from another checkpoint, build or
// CPU, and ErrCorrupt one whose bytes are damaged: both are rebuilt.
var (
	ErrStale   = errors.New("stale packed-weight cache")
	ErrCorrupt = errors.New("corrupt packed-weight cache")
)

// Cache is a directory of cache files, one per checkpoint path and
// precision.
type Cache struct {
	Dir string // made when a file is first stored
	// MinAge: a checkpoint whose times are less than MinAge older than
	// its Identity is not stored (0: always stored).
	MinAge time.Duration
}

// New returns the cache in dir with DefaultMinAge.
func New(dir string) *Cache { return &Cache{Dir: dir, MinAge: DefaultMinAge} }

// Info is what a cache file keeps besides the weights: what a loader
// needs from the checkpoint without reading it.
type Info struct {
	Config   model.Config      `json:"config"` // the network's, Classes and Precision as built
	Warnings []string          `json:"warnings,omitempty"`
	Metadata map[string]string `json:"metadata,omitempty"`
}

// Identity is a checkpoint file as it was when it was read: a cache file
// serves only the file with the same identity.
type Identity struct {
	Path    string `json:"path"` // absolute
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`
	// ChangeTime, Device and Inode are 0 where the system has none.
	ChangeTime int64  `json:"ctime_ns"`
	Device     uint64 `json:"dev"`
	Inode      uint64 `json:"ino"`

	at time.Time // when it was taken
}

// Identify returns the identity of the checkpoint at path, to take before
// reading it: a change during the read then makes the cache stale.
func Identify(path string) (Identity, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return Identity{}, err
	}
	id, err := fileIdentity(abs)
	if err != nil {
		return Identity{}, err
	}
	id.Path, id.at = abs, time.Now()
	return id, nil
}

// recent reports whether the file changed less than age before id was
// taken, or claims to have changed after.
func (id Identity) recent(age time.Duration) bool {
	last := time.Unix(0, max(id.ModTime, id.ChangeTime))
	return id.at.Sub(last) < age
}

func (id Identity) same(o Identity) bool {
	id.at, o.at = time.Time{}, time.Time{}
	return id == o
}

// File returns the cache file for the checkpoint id at precision prec.
func (c *Cache) File(id Identity, prec gemm.Precision) string {
	sum := sha256.Sum256([]byte(id.Path))
	return filepath.Join(c.Dir, fmt.Sprintf("%s-%v.pack", hex.EncodeToString(sum[:12]), effective(prec)))
}

// effective is the precision a network asked for prec runs on this CPU.
func effective(prec gemm.Precision) gemm.Precision {
	if prec == gemm.BF16 && !gemm.HasBF16() {
		return gemm.FP32
	}
	return prec
}

// header is the JSON after the fixed prefix.
type header struct {
	Layout     string   `json:"layout"`
	Checkpoint Identity `json:"checkpoint"`
	Info
	Arrays  []array  `json:"arrays"`
	DataLen int64    `json:"data_bytes"`
	CRC     []uint32 `json:"crc"` // CRC-32 (IEEE) of each chunkSize bytes of the data
}

// array is one model.PackedArray in the data: offset and length in values.
type array struct {
	Name   string `json:"name"`
	Offset int64  `json:"offset"`
	Len    int64  `json:"len"`
}

// Load maps the cache file of the checkpoint id at precision prec and
// builds the network from it. The mapping is never unmapped: the network
// reads its weights there for as long as the process runs. The error wraps
// fs.ErrNotExist when there is no file, ErrStale or ErrCorrupt.
func (c *Cache) Load(id Identity, prec gemm.Precision) (*model.Network, Info, error) {
	path := c.File(id, prec)
	// Opening a FIFO would block: only regular files are opened.
	if fi, err := os.Stat(path); err != nil {
		return nil, Info{}, err
	} else if !fi.Mode().IsRegular() {
		return nil, Info{}, fmt.Errorf("%s: %w: not a regular file", path, ErrCorrupt)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, Info{}, err
	}
	defer f.Close()
	h, dataOff, err := readHeader(f)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", path, err)
	}
	layout, err := Layout(prec)
	if err != nil {
		return nil, Info{}, err
	}
	switch {
	case h.Layout != layout:
		return nil, Info{}, fmt.Errorf("%s: %w: packed by another build or CPU", path, ErrStale)
	case !h.Checkpoint.same(id):
		return nil, Info{}, fmt.Errorf("%s: %w: the checkpoint changed", path, ErrStale)
	case h.Config.Precision != effective(prec):
		return nil, Info{}, fmt.Errorf("%s: %w: weights packed for %v", path, ErrStale, h.Config.Precision)
	}
	data, err := mapFile(f, dataOff+h.DataLen)
	if err != nil {
		return nil, Info{}, fmt.Errorf("%s: %w", path, err)
	}
	net, err := build(h, data[dataOff:])
	if err != nil {
		unmap(data)
		return nil, Info{}, fmt.Errorf("%s: %w", path, err)
	}
	return net, h.Info, nil
}

// readHeader reads and checks the prefix and header of a cache file and
// returns the header and where the data starts.
func readHeader(f *os.File) (*header, int64, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, 0, err
	}
	size := fi.Size()
	var pre [prefixSize]byte
	if _, err := f.ReadAt(pre[:], 0); err != nil {
		return nil, 0, fmt.Errorf("%w: %d bytes, shorter than its prefix", ErrCorrupt, size)
	}
	if string(pre[:8]) != magic {
		return nil, 0, fmt.Errorf("%w: not a packed-weight file", ErrCorrupt)
	}
	if v := binary.LittleEndian.Uint32(pre[8:]); v != Version {
		return nil, 0, fmt.Errorf("%w: format version %d, this build reads %d", ErrStale, v, Version)
	}
	crc := binary.LittleEndian.Uint32(pre[12:])
	hlen := binary.LittleEndian.Uint64(pre[16:])
	dataOff := binary.LittleEndian.Uint64(pre[24:])
	if hlen > maxHeader || dataOff < prefixSize+hlen || dataOff%pageSize != 0 || dataOff > uint64(size) {
		return nil, 0, fmt.Errorf("%w: header of %d bytes, data at %d in a file of %d", ErrCorrupt, hlen, dataOff, size)
	}
	raw := make([]byte, hlen)
	if _, err := f.ReadAt(raw, prefixSize); err != nil {
		return nil, 0, fmt.Errorf("%w: reading the header: %v", ErrCorrupt, err)
	}
	if crc32.ChecksumIEEE(raw) != crc {
		return nil, 0, fmt.Errorf("%w: header checksum mismatch", ErrCorrupt)
	}
	var h header
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, 0, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if h.DataLen < 0 || h.DataLen%4 != 0 || int64(dataOff)+h.DataLen != size {
		return nil, 0, fmt.Errorf("%w: %d bytes of data announced at %d, the file has %d", ErrCorrupt, h.DataLen, dataOff, size)
	}
	if want := (h.DataLen + chunkSize - 1) / chunkSize; int64(len(h.CRC)) != want {
		return nil, 0, fmt.Errorf("%w: %d checksums for %d chunks", ErrCorrupt, len(h.CRC), want)
	}
	return &h, int64(dataOff), nil
}

// build checks data against h's checksums and builds the network from the
// arrays h lists in it.
func build(h *header, data []byte) (*model.Network, error) {
	if err := verify(data, h.CRC); err != nil {
		return nil, err
	}
	values := unsafe.Slice((*float32)(unsafe.Pointer(unsafe.SliceData(data))), len(data)/4)
	arrays := make([]model.PackedArray, len(h.Arrays))
	for i, a := range h.Arrays {
		if a.Offset < 0 || a.Len < 0 || a.Offset > int64(len(values)) || a.Len > int64(len(values))-a.Offset {
			return nil, fmt.Errorf("%w: array %s of %d values at %d, past the %d of the data", ErrCorrupt, a.Name, a.Len, a.Offset, len(values))
		}
		arrays[i] = model.PackedArray{Name: a.Name, Values: values[a.Offset : a.Offset+a.Len : a.Offset+a.Len]}
	}
	net, err := model.FromPacked(h.Config, arrays)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return net, nil
}

// verify checks each chunk of data against its CRC, chunks spread over
// GOMAXPROCS goroutines: the file is in the page cache, so this runs at
// the speed of the CRC instructions.
func verify(data []byte, crcs []uint32) error {
	workers := min(runtime.GOMAXPROCS(0), len(crcs))
	bad := make([]bool, len(crcs))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(crcs); i += workers {
				chunk := data[i*chunkSize : min((i+1)*chunkSize, len(data))]
				bad[i] = crc32.ChecksumIEEE(chunk) != crcs[i]
			}
		})
	}
	wg.Wait()
	for i, b := range bad {
		if b {
			return fmt.Errorf("%w: checksum mismatch in bytes %d to %d", ErrCorrupt, i*chunkSize, min((i+1)*chunkSize, len(data)))
		}
	}
	return nil
}

// Store writes the cache file of the checkpoint id, read into net (whose
// Config gives the precision) with info, then removes the files of
// checkpoints that are gone or changed, and the oldest beyond a few. It
// writes nothing, and returns nil, when the checkpoint changed too
// recently to be told from a change to come (see MinAge).
func (c *Cache) Store(id Identity, net *model.Network, info Info) error {
	if id.recent(c.MinAge) {
		return nil
	}
	info.Config = net.Config()
	layout, err := Layout(info.Config.Precision)
	if err != nil {
		return err
	}
	arrays := net.Packed()
	h := header{Layout: layout, Checkpoint: id, Info: info}
	var off int64 // in values
	for _, a := range arrays {
		h.Arrays = append(h.Arrays, array{Name: a.Name, Offset: off, Len: int64(len(a.Values))})
		off = roundUp(off+int64(len(a.Values)), alignBytes/4)
	}
	h.DataLen = 4 * off
	h.CRC = checksums(arrays, h.Arrays, h.DataLen)
	raw, err := json.Marshal(&h)
	if err != nil {
		return err
	}
	dataOff := roundUp(prefixSize+int64(len(raw)), pageSize)
	var pre [prefixSize]byte
	copy(pre[:], magic)
	binary.LittleEndian.PutUint32(pre[8:], Version)
	binary.LittleEndian.PutUint32(pre[12:], crc32.ChecksumIEEE(raw))
	binary.LittleEndian.PutUint64(pre[16:], uint64(len(raw)))
	binary.LittleEndian.PutUint64(pre[24:], uint64(dataOff))

	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return err
	}
	final := c.File(id, info.Config.Precision)
	tmp, err := os.CreateTemp(c.Dir, tmpPattern)
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename, a no-op
	w := &dataWriter{w: tmp}
	w.write(pre[:])
	w.write(raw)
	w.pad(dataOff)
	for i, a := range arrays {
		w.pad(dataOff + 4*h.Arrays[i].Offset)
		w.write(valueBytes(a.Values))
	}
	w.pad(dataOff + h.DataLen)
	if w.err == nil {
		w.err = tmp.Chmod(0o644)
	}
	if err := errors.Join(w.err, tmp.Close()); err != nil {
		return fmt.Errorf("writing %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return err
	}
	c.prune(final)
	return nil
}

// checksums returns the CRC of each chunk of the data that arrays laid out
// as in index make, zeros between them.
func checksums(arrays []model.PackedArray, index []array, dataLen int64) []uint32 {
	crcs := make([]uint32, (dataLen+chunkSize-1)/chunkSize)
	var zeros [alignBytes]byte
	var pos int64
	// feed adds b, which starts at pos, to the chunks it covers.
	feed := func(b []byte) {
		for len(b) > 0 {
			i := pos / chunkSize
			n := min(int64(len(b)), (i+1)*chunkSize-pos)
			crcs[i] = crc32.Update(crcs[i], crc32.IEEETable, b[:n])
			b, pos = b[n:], pos+n
		}
	}
	for i, a := range arrays {
		for pos < 4*index[i].Offset {
			feed(zeros[:min(int64(len(zeros)), 4*index[i].Offset-pos)])
		}
		feed(valueBytes(a.Values))
	}
	for pos < dataLen {
		feed(zeros[:min(int64(len(zeros)), dataLen-pos)])
	}
	return crcs
}

// dataWriter writes to w, keeping the position and the first error.
type dataWriter struct {
	w   io.Writer
	pos int64
	err error
}

func (d *dataWriter) write(b []byte) {
	if d.err != nil {
		return
	}
	n, err := d.w.Write(b)
	d.pos += int64(n)
	d.err = err
}

// pad writes zeros up to position to.
func (d *dataWriter) pad(to int64) {
	if to > d.pos {
		d.write(make([]byte, to-d.pos))
	}
}

// valueBytes is the memory of v as bytes, in the host's byte order (the
// layout digest names the architecture, so files never cross orders).
func valueBytes(v []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(v))), 4*len(v))
}

func roundUp(n, align int64) int64 { return (n + align - 1) / align * align }
