package model

import (
	"math"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/res2net/res2net/internal/paritytest"
	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/headfit"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/ops/gemm"
	"github.com/res2net/res2net/pkg/preprocess"
)

// bf16Runners builds the network of tensors in FP32 and in BF16.
func bf16Runners(t *testing.T, cfg Config, tensors map[string]*ops.Tensor) (fp32, bf16 *Runner) {
	t.Helper()
	if !gemm.HasBF16() {
		t.Skip("no AVX512_BF16 on this CPU")
	}
	fp32 = newRunner(t, cfg, cloneStateDict(tensors))
	cfg.Precision = gemm.BF16
	bf16 = newRunner(t, cfg, tensors)
	if got := bf16.Network().Config().Precision; got != gemm.BF16 {
		t.Fatalf("network built in %v, want bf16", got)
	}
	return fp32, bf16
}

// maxDiff returns the largest |a-b| and the largest |a|.
func maxDiff(a, b []float32) (diff, scale float64) {
	for i := range a {
		diff = math.Max(diff, math.Abs(float64(a[i]-b[i])))
		scale = math.Max(scale, math.Abs(float64(a[i])))
	}
	return diff, scale
}

// argmax returns the index of the largest value of row.
func argmax(row []float32) int {
	best := 0
	for i, v := range row {
		if v > row[best] {
			best = i
		}
	}
	return best
}

// photoBatch loads a test photo as a batch of one with Holocron's
// transform, the full-size checkpoint's.
func photoBatch(t *testing.T, file string) *ops.Tensor {
	t.Helper()
	x, err := preprocess.Load(filepath.Join(photosDir, file), preprocess.Options{Transform: preprocess.HolocronTransform()})
	if err != nil {
		t.Fatal(err)
	}
	x.Shape = append([]int{1}, x.Shape...)
	return x
}

// forwardBoth returns the logits of x from the FP32 and the BF16 runner.
func forwardBoth(t *testing.T, fp32, bf16 *Runner, x *ops.Tensor) (want, got *ops.Tensor) {
	t.Helper()
	want, err := fp32.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	got, err = bf16.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	return want, got
}

// TestBF16Tiny runs the tiny model in BF16: logits within bfloat16's
// rounding of the FP32 ones, at one and two threads.
func TestBF16Tiny(t *testing.T) {
	ck, err := checkpoint.Load(filepath.Join(tinyDir, "tiny_zip.pth"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := tinyConfig()
	cfg.Classes = 0
	fp32, bf16 := bf16Runners(t, cfg, ck.Tensors)
	x := readNpy(t, filepath.Join(tinyDir, "input.npy"))
	want, err := fp32.Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	for _, threads := range []int{1, 2} {
		bf16.SetThreads(threads)
		got, err := bf16.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		diff, scale := maxDiff(want.Data, got.Data)
		// Each operand is rounded to 8 bits of mantissa: errors of a few
		// 2^-9 per layer, which the seeded network (no trained margins)
		// amplifies to ~15 % of its largest logit.
		if diff > 0.25*math.Max(scale, 1) || diff == 0 {
			t.Errorf("%d threads: max |logit diff| to FP32 = %.3g (max |logit| %.3g)", threads, diff, scale)
		}
		t.Logf("%d threads: max |logit diff| to FP32 = %.3g (max |logit| %.3g)", threads, diff, scale)
	}
}

// bf16Margin is the gap between the two largest FP32 logits above which
// BF16 must pick the same class on the seeded full-size network: twice
// the largest logit difference that rounding every conv's weights and
// inputs to bfloat16 makes on the test photos, 0.24-0.25 both here and in
// PyTorch (the same network with its folded weights and conv inputs cast
// to torch.bfloat16 and back). The untrained network's margins are often
// smaller (0.05 to 0.3), where either precision's class is a coin toss.
const bf16Margin = 0.5

// TestParityBF16Photos classifies every test photo with the full-size
// seeded checkpoint of `make parity` in BF16: the logits must be within
// 10 % of the largest FP32 logit, the top-1 class FP32's where FP32's
// margin exceeds bf16Margin, and the largest logit difference to FP32 is
// logged (the README quotes it).
func TestParityBF16Photos(t *testing.T) {
	dir := paritytest.Dir(t)
	torch := paritytest.ReadPhotos(t, dir, "photos.logits.npy")
	ck, err := checkpoint.Load(filepath.Join(dir, "full.pth"))
	if err != nil {
		t.Fatal(err)
	}
	fp32, bf16 := bf16Runners(t, Res2Net50(), ck.Tensors)
	worst := 0.0
	for i, f := range torch.Files {
		want, got := forwardBoth(t, fp32, bf16, photoBatch(t, f))
		top := argmax(torch.Row(i))
		a, b := argmax(want.Data), argmax(got.Data)
		if a != top {
			t.Errorf("%s: top-1 is class %d in FP32, %d in PyTorch", f, a, top)
		}
		margin := math.Inf(1)
		for c, v := range want.Data {
			if c != a {
				margin = math.Min(margin, float64(want.Data[a]-v))
			}
		}
		if b != a && margin > bf16Margin {
			t.Errorf("%s: top-1 is class %d in BF16, %d in FP32 by a margin of %.3f", f, b, a, margin)
		}
		diff, scale := maxDiff(want.Data, got.Data)
		if diff > 0.1*scale {
			t.Errorf("%s: max |logit diff| BF16 - FP32 = %.4f > 10 %% of %.2f", f, diff, scale)
		}
		worst = math.Max(worst, diff)
		t.Logf("%s: top-1 %d in BF16, %d in FP32 (margin %.3f); max |logit diff| %.4f (max |logit| %.2f)", f, b, a, margin, diff, scale)
	}
	t.Logf("largest logit difference BF16 - FP32 over %d photos: %.4f", len(torch.Files), worst)
}

// TestParityBF16TrainedHead is TestParityBF16Photos on a network whose
// head is trained, as a published model's is: the seeded checkpoint's
// random head leaves its logits 0.05-0.3 apart, closer than bfloat16
// rounding moves them, so that test can only require FP32's class where
// the margin is wide. Here the head is refitted (pkg/headfit, as
// train-head fits one) to tell the photos' five subjects apart from the
// FP32 features, and every photo must then keep its top-1 in BF16. The
// largest logit difference is logged (the README quotes it).
func TestParityBF16TrainedHead(t *testing.T) {
	dir := paritytest.Dir(t)
	photos := paritytest.ReadPhotos(t, dir, "photos.logits.npy")
	ck, err := checkpoint.Load(filepath.Join(dir, "full.pth"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := Res2Net50()
	fp32 := newRunner(t, cfg, cloneStateDict(ck.Tensors))
	// A photo's subject is its name up to the first dot: astronaut.jpg and
	// astronaut.progressive.jpg are the same picture.
	subjects := map[string]int{}
	var images []*ops.Tensor
	var features [][]float32
	var labels []int
	for _, f := range photos.Files {
		x := photoBatch(t, f)
		e, err := fp32.Embed(x)
		if err != nil {
			t.Fatal(err)
		}
		name, _, _ := strings.Cut(f, ".")
		if _, ok := subjects[name]; !ok {
			subjects[name] = len(subjects)
		}
		images = append(images, x)
		features = append(features, slices.Clone(e.Data))
		labels = append(labels, subjects[name])
	}
	head, err := headfit.Fit(features, labels, len(subjects), headfit.Options{L2: 1e-3})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Classes = head.Classes
	ck.Tensors["head.weight"] = &ops.Tensor{Shape: []int{head.Classes, head.Features}, Data: head.Weight}
	ck.Tensors["head.bias"] = &ops.Tensor{Shape: []int{head.Classes}, Data: head.Bias}
	fp32, bf16 := bf16Runners(t, cfg, ck.Tensors)
	worst, largest := 0.0, 0.0
	for i, x := range images {
		want, got := forwardBoth(t, fp32, bf16, x)
		a, b := argmax(want.Data), argmax(got.Data)
		if a != labels[i] {
			t.Fatalf("%s: the trained head gives class %d in FP32, want its subject %d", photos.Files[i], a, labels[i])
		}
		if b != a {
			t.Errorf("%s: top-1 is class %d in BF16, %d in FP32", photos.Files[i], b, a)
		}
		diff, scale := maxDiff(want.Data, got.Data)
		worst, largest = math.Max(worst, diff), math.Max(largest, scale)
		t.Logf("%s: top-1 %d in BF16 and FP32; max |logit diff| %.4f (max |logit| %.2f)", photos.Files[i], b, diff, scale)
	}
	t.Logf("trained head: largest logit difference BF16 - FP32 over %d photos: %.4f (logits up to %.2f)", len(images), worst, largest)
}
