package packcache

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"

	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/ops/gemm"
)

// Layout names what the packed weights of a network in precision prec look
// like when this build packs them on this CPU: the architecture, the
// format version, and a digest of the packed arrays of a small network
// that the running code builds with model.New from fixed values. Any
// change to the kernels' blocking, the packing, the folding of BatchNorm
// or the arrays' names changes that digest, so cache files packed by other
// code are stale without anyone having to remember a version number. It
// is computed once per precision, in about a millisecond.
// It fails only if the model package no longer builds the probe network,
// which then leaves the cache unused.
func Layout(prec gemm.Precision) (string, error) {
	if effective(prec) == gemm.BF16 {
		return layouts[1]()
	}
	return layouts[0]()
}

var layouts = [2]func() (string, error){
	sync.OnceValues(func() (string, error) { return probeLayout(gemm.FP32) }),
	sync.OnceValues(func() (string, error) { return probeLayout(gemm.BF16) }),
}

// probeConfig is the network Layout packs: every kind of conv of the
// default model (stem, reduce, branches, expand, downsample) at row
// counts that fill no whole panel, in a few thousand weights.
func probeConfig() model.Config {
	cfg := model.Res2Net50()
	cfg.Layers = [4]int{1, 1, 1, 1}
	cfg.Planes = [4]int{5, 10, 20, 40}
	cfg.StemChannels = 7
	cfg.Classes = 3
	return cfg
}

// probeRows x probeDepth is a matrix Layout packs alone, deeper than the
// network's, for the kernels' k slices: 29 rows, 1601 columns (several
// slices of every kernel, the last odd for bfloat16 pairs).
const probeRows, probeDepth = 29, 1601

func probeLayout(prec gemm.Precision) (string, error) {
	cfg := probeConfig()
	cfg.Precision = prec
	fill := lcg(1)
	tensors := seededStateDict(cfg, fill)
	net, err := model.New(cfg, tensors)
	if err != nil {
		return "", fmt.Errorf("the probe network of the packed-weight layout: %w", err)
	}
	deep := make([]float32, probeRows*probeDepth)
	fill(deep)
	arrays := append(net.Packed(), model.PackedArray{Name: "deep",
		Values: gemm.PackAPrecision(prec, probeRows, probeDepth, deep, probeDepth).Values()})

	h := sha256.New()
	var n [8]byte
	for _, a := range arrays {
		h.Write([]byte(a.Name))
		binary.LittleEndian.PutUint64(n[:], uint64(len(a.Values)))
		h.Write(n[:])
		h.Write(valueBytes(a.Values))
	}
	return fmt.Sprintf("%s/v%d/%v/%s", runtime.GOARCH, Version, net.Config().Precision, hex.EncodeToString(h.Sum(nil)[:16])), nil
}

// lcg returns a function filling slices with values in [-1, 1) from a fixed
// linear congruential generator: the same values in every build.
func lcg(seed uint32) func([]float32) {
	return func(v []float32) {
		for i := range v {
			seed = seed*1664525 + 1013904223
			v[i] = float32(int32(seed>>8)-1<<23) / (1 << 23)
		}
	}
}

// seededStateDict returns a state dict for cfg filled by fill, with
// positive BatchNorm variances.
func seededStateDict(cfg model.Config, fill func([]float32)) map[string]*ops.Tensor {
	tensors := make(map[string]*ops.Tensor)
	for _, p := range cfg.StateDict() {
		t := ops.New(p.Shape...)
		fill(t.Data)
		if strings.HasSuffix(p.Name, ".running_var") {
			for i, v := range t.Data {
				t.Data[i] = float32(math.Abs(float64(v))) + 0.5
			}
		}
		tensors[p.Name] = t
	}
	return tensors
}
