package checkpoint

import (
	"archive/zip"
	"bytes"
	"errors"
	"strings"
	"testing"
)

// TestLoadDeepNesting feeds pickles nested a quarter to half a million
// levels deep: the unpickler and the state-dict mapping must answer with an
// error, not overflow the stack (which Go cannot recover from).
func TestLoadDeepNesting(t *testing.T) {
	// As deep as the stack bound allows: each level of lists keeps a list
	// on the stack, each level of dicts a key and a dict.
	const depth = maxStackDepth - 1
	const dictDepth = maxStackDepth/2 - 1
	pickles := map[string]string{
		"lists": "\x80\x02" + strings.Repeat("]", depth) + strings.Repeat("a", depth-1) + ".",
		"dicts": "\x80\x02}" + strings.Repeat("X\x05\x00\x00\x00model}", dictDepth) + strings.Repeat("s", dictDepth) + ".",
	}
	for name, pkl := range pickles {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			zw := zip.NewWriter(&buf)
			w, err := zw.Create("archive/data.pkl")
			if err != nil {
				t.Fatal(err)
			}
			w.Write([]byte(pkl))
			if err := zw.Close(); err != nil {
				t.Fatal(err)
			}
			_, err = Read(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if !errors.Is(err, ErrNotStateDict) {
				t.Errorf("Read = %v, want ErrNotStateDict", err)
			}
		})
	}
}
