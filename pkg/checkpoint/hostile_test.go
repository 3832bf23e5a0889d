package checkpoint

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// The tests of this file reproduce the hostile checkpoints of issue 10
// (items 1 to 4): files of a few bytes to a few KB that cost gigabytes of
// memory or minutes of CPU before the scan of pickles and zip directories
// bounded them. Each asserts the error and the time and memory the load
// took.

// Bounds asserted on every hostile load; a good load of these sizes takes
// a few milliseconds and a few MB.
const (
	hostileMaxAlloc = 64 << 20
	hostileMaxTime  = raceSlowdown * 3 * time.Second // generous: a shared machine
)

// readBounded reads data as a checkpoint, and fails the test unless the
// error is want with msg in it and the read stayed within the bounds.
func readBounded(t *testing.T, data []byte, want error, msg string) {
	t.Helper()
	var ck *Checkpoint
	var err error
	start := time.Now()
	alloc := allocated(func() { ck, err = Read(bytes.NewReader(data), int64(len(data))) })
	took := time.Since(start)
	if err == nil {
		t.Fatalf("Read succeeded with %d tensors", len(ck.Tensors))
	}
	if !errors.Is(err, want) || !strings.Contains(err.Error(), msg) {
		t.Errorf("error %q, want %v mentioning %q", err, want, msg)
	}
	if alloc > hostileMaxAlloc {
		t.Errorf("allocated %d MB", alloc>>20)
	}
	if took > hostileMaxTime {
		t.Errorf("took %v", took)
	}
}

// zipPickle is a zip checkpoint whose data.pkl is pkl, deflated.
func zipPickle(t *testing.T, pkl string) []byte {
	t.Helper()
	data := zipFileMethod(t, zip.Deflate, zipEntry{"archive/data.pkl", []byte(pkl)})
	if len(data) > 64<<10 {
		t.Fatalf("test file of %d bytes is not small", len(data))
	}
	return data
}

func le64(n uint64) string { return string(binary.LittleEndian.AppendUint64(nil, n)) }
func le32(n uint32) string { return string(binary.LittleEndian.AppendUint32(nil, n)) }

// TestHostileLengths: every opcode that carries a length, claiming more
// than the file holds (issue 10 item 1: a FRAME of 550 GB was a runtime
// out-of-memory crash, which recover cannot catch).
func TestHostileLengths(t *testing.T) {
	const proto4 = "\x80\x04"
	tests := []struct {
		name, pkl string
		want      error
		msg       string
	}{
		{"FRAME", proto4 + "\x95" + le64(550e9) + "N.", ErrTruncated, "FRAME at byte 2 of a pickle claims 550000000000 bytes"},
		{"FRAME above MaxInt64", proto4 + "\x95" + le64(1<<63+5) + "N.", ErrTruncated, "FRAME"},
		{"BINBYTES8", proto4 + "\x8e" + le64(1<<62) + ".", ErrTruncated, "BINBYTES8 at byte 2 of a pickle claims"},
		{"BINUNICODE8", proto4 + "\x8d" + le64(1<<40) + ".", ErrTruncated, "BINUNICODE8"},
		{"BYTEARRAY8", "\x80\x05\x96" + le64(1<<40) + ".", ErrTruncated, "BYTEARRAY8"},
		{"BINUNICODE", proto4 + "X" + le32(0xffffffff) + ".", ErrTruncated, "BINUNICODE"},
		{"BINBYTES", proto4 + "B" + le32(0xfffffff0) + ".", ErrTruncated, "BINBYTES"},
		{"BINSTRING", "\x80\x02T" + le32(0x7fffffff) + ".", ErrTruncated, "BINSTRING"},
		{"SHORT_BINUNICODE", "\x80\x02\x8c\xff" + "abc", ErrTruncated, "SHORT_BINUNICODE"},
		{"LONG1", "\x80\x02\x8a\xff" + "abc", ErrTruncated, "LONG1"},
		{"LONG4", "\x80\x02\x8b" + le32(0x7fffffff) + ".", ErrUnsupported, "LONG4 at byte 2 of 2147483647 bytes"},
		{"FRAME past STOP", proto4 + "\x95" + le64(100) + "N." + strings.Repeat("\x00", 200), ErrCorrupt, "inside a FRAME that runs to byte 111"},
		{"FRAME in FRAME", proto4 + "\x95" + le64(11) + "\x95" + le64(2) + "N.", ErrCorrupt, "FRAME at byte 11 inside the frame"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			readBounded(t, zipPickle(t, tc.pkl), tc.want, tc.msg)
		})
	}
	t.Run("legacy FRAME", func(t *testing.T) {
		// In the published (legacy) format, right after the magic number.
		data := append(append([]byte(nil), legacyMagicPickle...), proto4+"\x95"+le64(550e9)+"M\xe9\x03."...)
		readBounded(t, data, ErrTruncated, "protocol version: truncated checkpoint: FRAME at byte 2 of a pickle claims 550000000000 bytes")
	})
	t.Run("framed pickle loads", func(t *testing.T) {
		// Protocol 4 as Python writes it: a frame around the opcodes.
		body := "}q\x00(X\x01\x00\x00\x00kK\x01u."
		pkl := proto4 + "\x95" + le64(uint64(len(body))) + body
		data, err := readPickle(bufioReader(pkl), int64(len(pkl)))
		if err != nil {
			t.Fatal(err)
		}
		obj, err := unpickle(data, nil)
		if err != nil {
			t.Fatal(err)
		}
		if items, ok := dictItems(obj); !ok || len(items) != 1 || items[0].value != 1 {
			t.Errorf("unpickled %v", obj)
		}
	})
}

// TestHostileStack: opcodes that cost gopickle memory without bytes
// (issue 10 item 3: 8 KB of deflated MARKs took 1.8 GB, then failed with a
// misleading "stack is empty").
func TestHostileStack(t *testing.T) {
	tests := []struct {
		name, pkl string
		want      error
		msg       string
	}{
		{"millions of MARKs", "\x80\x02" + strings.Repeat("(", 8_000_000) + ".", ErrUnsupported, "more than 4096 MARKs open at byte 4098"},
		{"stack depth", "\x80\x02" + strings.Repeat("N", maxStackDepth+1) + ".", ErrUnsupported, "more than 524288 items on the stack"},
		{"opcode count", "\x80\x02" + strings.Repeat("N0", maxPickleOps/2) + "N.", ErrUnsupported, "more than 1048576 opcodes"},
		{"empty stack", "\x80\x02.", ErrCorrupt, "STOP at byte 2 of a pickle needs 1 stack items, 0 are there"},
		{"SETITEM short", "\x80\x02}N" + "s.", ErrCorrupt, "SETITEM at byte 4 of a pickle needs 3 stack items, 2 are there"},
		{"APPENDS without list", "\x80\x02(Ne.", ErrCorrupt, "APPENDS at byte 4 of a pickle needs 1 stack items, 0 are there"},
		{"POP_MARK without MARK", "\x80\x02N1N.", ErrCorrupt, "POP_MARK at byte 3 of a pickle without a MARK"},
		{"MARK then STOP", "\x80\x02N(.", ErrCorrupt, "STOP at byte 4 of a pickle needs 1 stack items, 0 are there"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			readBounded(t, zipPickle(t, tc.pkl), tc.want, tc.msg)
		})
	}
	t.Run("POP of an empty frame pops the mark", func(t *testing.T) {
		// Python's and gopickle's POP: with nothing above the mark, the mark.
		pkl := "\x80\x02N(0."
		if _, err := readPickle(bufioReader(pkl), int64(len(pkl))); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHostileOpcodeBudget: the costliest pickles within the opcode bound,
// each a KB deflated, stay within a few hundred MB allocated in all.
func TestHostileOpcodeBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates 100-200 MB per case")
	}
	const maxAlloc = 256 << 20
	for name, pkl := range map[string]string{
		"memoized dicts":     "\x80\x02" + strings.Repeat("}\x94", maxPickleOps/2-1) + ".",
		"nested lists":       "\x80\x02]" + strings.Repeat("]a", maxPickleOps/2-1) + ".",
		"lists from MARKs":   "\x80\x02]" + strings.Repeat("(la", maxPickleOps/3-1) + ".",
		"OrderedDict values": "\x80\x02]ccollections\nOrderedDict\nq\x00" + strings.Repeat("h\x00)Ra", maxPickleOps/4-2) + ".",
	} {
		t.Run(name, func(t *testing.T) {
			data := zipPickle(t, pkl)
			var err error
			alloc := allocated(func() { _, err = Read(bytes.NewReader(data), int64(len(data))) })
			checkLoaded(t, nil, err, 0)
			if alloc > maxAlloc {
				t.Errorf("%d-byte file: allocated %d MB", len(data), alloc>>20)
			}
		})
	}
}

// TestHostileNumbers: numbers whose parsing costs quadratic time (issue 10
// item 4: a text LONG of millions of digits, 2 KB deflated, took seconds
// to minutes in big.Int.SetString).
func TestHostileNumbers(t *testing.T) {
	digits := strings.Repeat("7", 2_000_000)
	tests := []struct {
		name, pkl string
		msg       string
	}{
		{"LONG", "\x80\x02L" + digits + "L\n.", "LONG at byte 2 has more than 4096 characters"},
		{"INT", "\x80\x02I" + digits + "\n.", "INT at byte 2 has more than 4096 characters"},
		{"FLOAT", "\x80\x02F" + digits + "\n.", "FLOAT at byte 2 has more than 4096 characters"},
		{"LONG4", "\x80\x02\x8b" + le32(1<<20) + strings.Repeat("\x01", 1<<20) + ".", "LONG4 at byte 2 of 1048576 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			readBounded(t, zipPickle(t, tc.pkl), ErrUnsupported, tc.msg)
		})
	}
	t.Run("long numbers within the bound", func(t *testing.T) {
		pkl := "\x80\x02(L" + strings.Repeat("9", maxNumberLen-1) + "L\nI" + strings.Repeat("1", 18) + "\n\x8b" + le32(maxNumberLen) +
			strings.Repeat("\x01", maxNumberLen) + "t."
		data, err := readPickle(bufioReader(pkl), int64(len(pkl)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := unpickle(data, nil); err != nil {
			t.Fatal(err)
		}
	})
}

// TestHostileZip: zip directories that multiply what a small file expands
// to (issue 10 item 2: six 46-byte directory records over one 256 KB entry
// cost 3.2 GB).
func TestHostileZip(t *testing.T) {
	const numel = 1 << 16 // 256 KB of float32 zeros, deflated to a few hundred bytes
	var specs []tensorSpec
	for i := range 6 {
		k := fmt.Sprint(i)
		specs = append(specs, tensorSpec{"w" + k, "FloatStorage", k, numel, 0, []int64{numel}, []int64{1}})
	}
	zeros := make([]byte, 4*numel)
	one := zipFileMethod(t, zip.Deflate,
		zipEntry{"archive/data.pkl", stateDictPickle(false, specs...)},
		zipEntry{"archive/data/0", zeros})
	t.Run("overlapping entries", func(t *testing.T) {
		data := aliasEntry(t, one, "archive/data/0", "archive/data/1", "archive/data/2", "archive/data/3", "archive/data/4", "archive/data/5")
		readBounded(t, data, ErrCorrupt, "zip entries archive/data/0 and archive/data/1 overlap")
	})
	t.Run("total expansion", func(t *testing.T) {
		// Distinct entries of 4 MiB each, ~4 KB deflated: 20 MiB from a
		// file of ~25 KB, beyond the 16 MiB any archive may expand to.
		const big = 1 << 20
		var specs []tensorSpec
		entries := []zipEntry{{}}
		for i := range 5 {
			k := fmt.Sprint(i)
			specs = append(specs, tensorSpec{"w" + k, "FloatStorage", k, big, 0, []int64{big}, []int64{1}})
			entries = append(entries, zipEntry{"archive/data/" + k, make([]byte, 4*big)})
		}
		entries[0] = zipEntry{"archive/data.pkl", stateDictPickle(false, specs...)}
		data := zipFileMethod(t, zip.Deflate, entries...)
		if len(data) > 64<<10 {
			t.Fatalf("test file of %d bytes is not small", len(data))
		}
		readBounded(t, data, ErrUnsupported, "entry archive/data/3: storage of 1048576 float32 elements: unsupported checkpoint content: 4194304 bytes, beyond what the archive may expand to")
	})
	t.Run("within the budget", func(t *testing.T) {
		ck, err := Read(bytes.NewReader(one), int64(len(one)))
		if err == nil || !strings.Contains(err.Error(), "archive/data/1 is missing") {
			t.Fatalf("error %v, want the missing entry", err)
		}
		specs := specs[:1]
		ok := zipFileMethod(t, zip.Deflate,
			zipEntry{"archive/data.pkl", stateDictPickle(false, specs...)},
			zipEntry{"archive/data/0", zeros})
		if ck, err = Read(bytes.NewReader(ok), int64(len(ok))); err != nil || len(ck.Tensors["w0"].Data) != numel {
			t.Fatalf("Read = %v", err)
		}
	})
}

// aliasEntry adds to a zip archive's central directory a copy of entry
// name's record under each of the aliases: records that all point at the
// same data.
func aliasEntry(t *testing.T, data []byte, name string, aliases ...string) []byte {
	t.Helper()
	const eocdLen, cdHeaderLen = 22, 46
	eocd := data[len(data)-eocdLen:]
	if binary.LittleEndian.Uint32(eocd) != 0x06054b50 {
		t.Fatal("archive has a comment")
	}
	cdSize := binary.LittleEndian.Uint32(eocd[12:])
	cdOff := binary.LittleEndian.Uint32(eocd[16:])
	count := binary.LittleEndian.Uint16(eocd[10:])
	cd := data[cdOff : cdOff+cdSize]
	var out bytes.Buffer
	out.Write(data[:cdOff])
	out.Write(cd)
	for p := 0; p < len(cd); {
		rec := cd[p:]
		nameLen := int(binary.LittleEndian.Uint16(rec[28:]))
		recLen := cdHeaderLen + nameLen + int(binary.LittleEndian.Uint16(rec[30:])) + int(binary.LittleEndian.Uint16(rec[32:]))
		if string(rec[cdHeaderLen:cdHeaderLen+nameLen]) == name {
			for _, a := range aliases {
				r := append([]byte(nil), rec[:cdHeaderLen]...)
				binary.LittleEndian.PutUint16(r[28:], uint16(len(a)))
				r = append(r, a...)
				r = append(r, rec[cdHeaderLen+nameLen:recLen]...)
				out.Write(r)
			}
		}
		p += recLen
	}
	newEOCD := append([]byte(nil), eocd...)
	binary.LittleEndian.PutUint16(newEOCD[8:], count+uint16(len(aliases)))
	binary.LittleEndian.PutUint16(newEOCD[10:], count+uint16(len(aliases)))
	binary.LittleEndian.PutUint32(newEOCD[12:], uint32(out.Len())-cdOff)
	out.Write(newEOCD)
	return out.Bytes()
}

// TestHostileSafetensorsHeader: the largest header accepted, all of it
// tensor entries (zero-size tensors need no data), parses within a bounded
// allocation.
func TestHostileSafetensorsHeader(t *testing.T) {
	if testing.Short() {
		t.Skip("allocates about 120 MB")
	}
	var b strings.Builder
	b.WriteString("{")
	for i := 0; b.Len() < maxSafetensorsHeader-100; i++ {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"%x":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}`, i)
	}
	b.WriteString("}")
	data := stFile(b.String(), nil)
	var ck *Checkpoint
	var err error
	start := time.Now()
	alloc := allocated(func() { ck, err = Read(bytes.NewReader(data), int64(len(data))) })
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d-byte header, %d tensors: %v, %d MB allocated", len(data), len(ck.Keys), time.Since(start), alloc>>20)
	if alloc > 256<<20 {
		t.Errorf("allocated %d MB", alloc>>20)
	}
}
