package preprocess

import (
	"encoding/binary"
	"hash/crc32"
	"runtime"
)

// runtimeMem snapshots the cumulative heap allocation.
type runtimeMem struct{ total uint64 }

func (m *runtimeMem) read() {
	var s runtime.MemStats
	runtime.ReadMemStats(&s)
	m.total = s.TotalAlloc
}

// withPNGSize returns a copy of a PNG whose IHDR declares w x h.
func withPNGSize(data []byte, w, h uint32) []byte {
	b := append([]byte(nil), data...)
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// withJPEGSize returns a copy of a JPEG whose SOF segment declares w x h.
func withJPEGSize(data []byte, w, h uint16) []byte {
	b := append([]byte(nil), data...)
	for pos := 2; pos+9 < len(b); {
		marker := b[pos+1]
		if marker >= 0xc0 && marker <= 0xc2 {
			binary.BigEndian.PutUint16(b[pos+5:], h)
			binary.BigEndian.PutUint16(b[pos+7:], w)
			return b
		}
		pos += 2 + int(binary.BigEndian.Uint16(b[pos+2:]))
	}
	panic("no SOF marker")
}
