//go:build unix

package packcache

import (
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/res2net/res2net/pkg/ops/gemm"
)

// TestNotAFile: a directory or a FIFO where the cache file should be is
// refused at once (opening the FIFO would block), and a FIFO is replaced
// by the next Store.
func TestNotAFile(t *testing.T) {
	for _, kind := range []string{"directory", "fifo"} {
		t.Run(kind, func(t *testing.T) {
			c, path, id := stored(t)
			os.Remove(path)
			var err error
			if kind == "fifo" {
				err = syscall.Mkfifo(path, 0o644)
			} else {
				err = os.Mkdir(path, 0o755)
			}
			if err != nil {
				t.Skip(err)
			}
			if _, _, err := c.Load(id, gemm.FP32); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("load: %v, want ErrCorrupt", err)
			}
			if kind == "fifo" {
				if err := c.Store(id, newNet(t, probeConfig(), 3), Info{}); err != nil {
					t.Fatal(err)
				}
				if _, _, err := c.Load(id, gemm.FP32); err != nil {
					t.Fatalf("after storing again: %v", err)
				}
			}
		})
	}
}
