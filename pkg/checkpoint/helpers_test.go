package checkpoint

import (
	"archive/zip"
	"bufio"
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// pickler writes protocol-2 pickles by hand, for checkpoints PyTorch would
// never write.
type pickler struct{ bytes.Buffer }

func (p *pickler) op(ops ...byte) *pickler { p.Write(ops); return p }

func (p *pickler) str(s string) *pickler {
	p.WriteByte('X')
	binary.Write(&p.Buffer, binary.LittleEndian, uint32(len(s)))
	p.WriteString(s)
	return p
}

func (p *pickler) global(module, name string) *pickler {
	p.WriteString("c" + module + "\n" + name + "\n")
	return p
}

// long writes v as LONG1 with 8 bytes, so any int64 fits.
func (p *pickler) long(v int64) *pickler {
	p.op(0x8a, 8)
	binary.Write(&p.Buffer, binary.LittleEndian, v)
	return p
}

func (p *pickler) tuple(vs []int64) *pickler {
	p.op('(')
	for _, v := range vs {
		p.long(v)
	}
	return p.op('t')
}

// tensorSpec describes one tensor of a hand-made state dict.
type tensorSpec struct {
	key, storageType, storageKey string
	numel, offset                int64
	size, stride                 []int64
}

// stateDictPickle pickles {key: tensor, ...} the way torch.save does; legacy
// adds the sixth (view) field to the persistent ids.
func stateDictPickle(legacy bool, specs ...tensorSpec) []byte {
	var p pickler
	p.op(0x80, 2, '}', '(')
	for _, s := range specs {
		p.str(s.key).global("torch._utils", "_rebuild_tensor_v2").op('(', '(')
		p.str("storage").global("torch", s.storageType).str(s.storageKey).str("cpu").long(s.numel)
		if legacy {
			p.op('N')
		}
		p.op('t', 'Q').long(s.offset).tuple(s.size).tuple(s.stride).op(0x89, 'N', 't', 'R')
	}
	p.op('u', '.')
	return p.Bytes()
}

// legacyFile assembles a legacy checkpoint: header pickles, the state dict
// pickle, the key list and the storages (each given as its element-count
// header and raw bytes).
func legacyFile(stateDict []byte, keys []string, storages ...[]byte) []byte {
	var b bytes.Buffer
	b.Write(legacyMagicPickle)
	b.WriteString("\x80\x02M\xe9\x03.")                                                    // 1001
	b.Write(new(pickler).op(0x80, 2, '}').str("little_endian").op(0x88, 's', '.').Bytes()) // sys_info
	b.Write(stateDict)
	var kp pickler
	kp.op(0x80, 2, ']', '(')
	for _, k := range keys {
		kp.str(k)
	}
	b.Write(kp.op('e', '.').Bytes())
	for _, s := range storages {
		b.Write(s)
	}
	return b.Bytes()
}

// storageBytes is a legacy storage record: count, then float32 values.
func storageBytes(count uint64, values ...float32) []byte {
	var b bytes.Buffer
	binary.Write(&b, binary.LittleEndian, count)
	binary.Write(&b, binary.LittleEndian, values)
	return b.Bytes()
}

// zipFile writes the named entries, in order, stored uncompressed.
func zipFile(t testing.TB, entries ...zipEntry) []byte {
	t.Helper()
	return zipFileMethod(t, zip.Store, entries...)
}

// zipFileMethod writes the named entries, in order, with the given
// compression method.
func zipFileMethod(t testing.TB, method uint16, entries ...zipEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	w := zip.NewWriter(&b)
	for _, e := range entries {
		f, err := w.CreateHeader(&zip.FileHeader{Name: e.name, Method: method})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(e.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type zipEntry struct {
	name string
	data []byte
}

// zipEntries reads every entry of a zip fixture.
func zipEntries(t testing.TB, data []byte) []zipEntry {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out []zipEntry
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		if _, err := b.ReadFrom(rc); err != nil {
			t.Fatal(err)
		}
		rc.Close()
		out = append(out, zipEntry{f.Name, b.Bytes()})
	}
	return out
}

// fixture reads a file of testdata.
func fixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// writeTemp writes data to a new file in a test directory.
func writeTemp(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// bufioReader reads s.
func bufioReader(s string) *bufio.Reader { return bufio.NewReader(strings.NewReader(s)) }

// allocated returns the bytes f allocates.
func allocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}
