package packcache

import (
	"testing"

	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/ops/gemm"
)

// BenchmarkLoad maps and checks the cache file of the full-size default
// network, as every run of a command does when the file is good, and
// builds the network from it; "layout" is the digest of the probe network
// that each process computes once.
func BenchmarkLoad(b *testing.B) {
	b.Run("layout", func(b *testing.B) {
		for b.Loop() {
			if _, err := probeLayout(gemm.FP32); err != nil {
				b.Fatal(err)
			}
		}
	})
	cfg := model.Res2Net50()
	net, err := model.New(cfg, seededStateDict(cfg, lcg(1)))
	if err != nil {
		b.Fatal(err)
	}
	c := &Cache{Dir: b.TempDir()}
	_, id := checkpointFile(b, b.TempDir(), "weights")
	if err := c.Store(id, net, Info{}); err != nil {
		b.Fatal(err)
	}
	b.Run("full-size", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := c.Load(id, gemm.FP32); err != nil {
				b.Fatal(err)
			}
		}
	})
}
