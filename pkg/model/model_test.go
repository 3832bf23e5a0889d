package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/ops/gemm"
)

// tinyConfig is the configuration of the fixtures in testdata/tiny: the
// Res2Net-50 layout with split widths of 1, 3, 6 and 13 channels.
func tinyConfig() Config {
	cfg := Res2Net50()
	cfg.Planes, cfg.StemChannels = [4]int{4, 8, 16, 32}, 8
	return cfg
}

// randomStateDict returns seeded tensors for every parameter of cfg: conv
// and head weights with He-uniform scale so activations stay near unit
// size through the depth, and BatchNorm statistics far from the identity so
// that folding has work to do.
func randomStateDict(cfg Config, seed uint64) map[string]*ops.Tensor {
	rng := rand.New(rand.NewPCG(seed, 99))
	uniform := func(t *ops.Tensor, lo, hi float32) {
		for i := range t.Data {
			t.Data[i] = lo + rng.Float32()*(hi-lo)
		}
	}
	tensors := map[string]*ops.Tensor{}
	for _, p := range cfg.StateDict() {
		t := ops.New(p.Shape...)
		switch {
		case strings.HasSuffix(p.Name, "running_var"):
			uniform(t, 0.5, 2)
		case strings.HasSuffix(p.Name, "running_mean"), strings.HasSuffix(p.Name, "bias"):
			uniform(t, -0.3, 0.3)
		case len(p.Shape) == 1: // BatchNorm weight
			uniform(t, 0.2, 0.6)
		default:
			a := float32(math.Sqrt(6 / float64(ops.NumElements(p.Shape[1:]))))
			uniform(t, -a, a)
		}
		tensors[p.Name] = t
	}
	return tensors
}

// newRunner builds the network of cfg from tensors and returns a runner on it.
func newRunner(t testing.TB, cfg Config, tensors map[string]*ops.Tensor) *Runner {
	t.Helper()
	net, err := New(cfg, tensors)
	if err != nil {
		t.Fatal(err)
	}
	return net.NewRunner()
}

// cloneStateDict deep-copies tensors, since New folds BatchNorm in place.
func cloneStateDict(tensors map[string]*ops.Tensor) map[string]*ops.Tensor {
	c := make(map[string]*ops.Tensor, len(tensors))
	for k, t := range tensors {
		c[k] = &ops.Tensor{Shape: append([]int(nil), t.Shape...), Data: append([]float32(nil), t.Data...)}
	}
	return c
}

func randomInput(seed uint64, shape ...int) *ops.Tensor {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := ops.New(shape...)
	for i := range x.Data {
		x.Data[i] = float32(rng.NormFloat64())
	}
	return x
}

// referenceForward is the network written out from
// testdata/reference/FACTS.md and FAMILY.md with only the reference
// operators: every conv followed by an explicit BatchNorm, channel splits
// and concatenations as copies, nothing folded or fused, keys spelled out
// per layout. Whether a block has a downsample is read from the state dict.
func referenceForward(cfg Config, t map[string]*ops.Tensor, x *ops.Tensor) *ops.Tensor {
	timm := cfg.Layout == LayoutTimm
	convBN := func(x *ops.Tensor, conv, bn string, stride, pad int, relu bool) *ops.Tensor {
		w := t[conv+".weight"]
		y := ops.Conv2dRef(x, w, nil, stride, pad, x.Shape[1]/w.Shape[1])
		y = ops.BatchNormRef(y, ops.BatchNorm{Weight: t[bn+".weight"].Data, Bias: t[bn+".bias"].Data,
			Mean: t[bn+".running_mean"].Data, Var: t[bn+".running_var"].Data, Eps: 1e-5})
		if relu {
			clampReLU(y.Data)
		}
		return y
	}
	switch {
	case !timm:
		x = convBN(x, "features.0", "features.1", 2, 3, true)
	case cfg.Stem == StemDeep:
		x = convBN(x, "conv1.0", "conv1.1", 2, 1, true)
		x = convBN(x, "conv1.3", "conv1.4", 1, 1, true)
		x = convBN(x, "conv1.6", "bn1", 1, 1, true)
	default:
		x = convBN(x, "conv1", "bn1", 2, 3, true)
	}
	x = ops.MaxPool2dRef(x, ops.Pool2d{Kernel: 3, Stride: 2, Pad: 1})
	for s := range 4 {
		width := cfg.Planes[s] * cfg.BaseWidth / 64 * cfg.Cardinality
		for b := range cfg.Layers[s] {
			// Keys of the block's parts: reduce conv and BN, branch i conv and
			// BN, expand conv and BN, shortcut conv and BN.
			name := fmt.Sprintf("features.%d.%d", s+4, b)
			reduce, reduceBN, expand, expandBN := name+".conv.0", name+".conv.1", name+".conv.4", name+".conv.5"
			branch := func(i int) (string, string) {
				br := fmt.Sprintf("%s.conv.3.conv.%d", name, i)
				return br + ".0", br + ".1"
			}
			short, shortBN := name+".downsample.0", name+".downsample.1"
			if timm {
				name = fmt.Sprintf("layer%d.%d", s+1, b)
				reduce, reduceBN, expand, expandBN = name+".conv1", name+".bn1", name+".conv3", name+".bn3"
				branch = func(i int) (string, string) {
					return fmt.Sprintf("%s.convs.%d", name, i), fmt.Sprintf("%s.bns.%d", name, i)
				}
				short, shortBN = name+".downsample.0", name+".downsample.1"
				if cfg.Shortcut == ShortcutAvgPool {
					short, shortBN = name+".downsample.1", name+".downsample.2"
				}
			}
			stride := 1
			if s > 0 && b == 0 {
				stride = 2
			}
			_, first := t[short+".weight"]

			splits := splitChannels(convBN(x, reduce, reduceBN, 1, 0, true), width)
			var outs []*ops.Tensor
			for i := range max(1, cfg.Scale-1) {
				in := splits[i]
				if i > 0 && !first {
					in = addTensors(outs[i-1], splits[i])
				}
				conv, bn := branch(i)
				outs = append(outs, convBN(in, conv, bn, stride, 1, true))
			}
			if cfg.Scale > 1 {
				last := splits[cfg.Scale-1]
				if first {
					last = ops.AvgPool2dRef(last, ops.Pool2d{Kernel: 3, Stride: stride, Pad: 1})
				}
				outs = append(outs, last)
			}
			y := convBN(concatChannels(outs), expand, expandBN, 1, 0, false)
			identity := x
			switch {
			case first && cfg.Shortcut == ShortcutAvgPool:
				if stride != 1 {
					identity = ops.AvgPool2dRef(x, ops.Pool2d{Kernel: 2, Stride: stride, CeilMode: true, ExcludePad: true})
				}
				identity = convBN(identity, short, shortBN, 1, 0, false)
			case first:
				identity = convBN(x, short, shortBN, stride, 0, false)
			}
			y = addTensors(y, identity)
			clampReLU(y.Data)
			x = y
		}
	}
	n, c, hw := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	pooled := ops.New(n, c)
	for i := range n {
		ops.GlobalAvgPool(pooled.Data[i*c:], x.Data[i*c*hw:], c, hw)
	}
	head := "head"
	if timm {
		head = "fc"
	}
	return ops.LinearRef(pooled, t[head+".weight"], t[head+".bias"].Data)
}

// tinyKind is a tiny-width configuration of one structural kind of the
// family, in timm's layout; scripts/timm_reference.py defines the same
// ones (TINY_KINDS) for the committed PyTorch fixtures in testdata/timm.
type tinyKind struct {
	name string
	cfg  Config
}

// tinyKinds lists the structural kinds: scale 2 and 8, cardinality 8 (with
// groups of 1 to 8 channels), the deep stem with the avg-pool shortcut, and
// the 101-layer depth.
func tinyKinds() []tinyKind {
	base := func(layers, planes [4]int, stem, baseWidth, scale, cardinality int) Config {
		return Config{Layers: layers, Planes: planes, StemChannels: stem, BaseWidth: baseWidth,
			Scale: scale, Cardinality: cardinality, Classes: 10, Layout: LayoutTimm}
	}
	l50, l101, short := [4]int{3, 4, 6, 3}, [4]int{3, 4, 23, 3}, [4]int{2, 2, 2, 2}
	narrow, wider := [4]int{4, 8, 16, 32}, [4]int{8, 16, 32, 64}
	deep := base(l50, narrow, 8, 26, 4, 1)
	deep.Stem, deep.StemWidth, deep.Shortcut = StemDeep, 4, ShortcutAvgPool
	return []tinyKind{
		{"26w_4s", base(l50, narrow, 8, 26, 4, 1)},
		{"48w_2s", base(l50, narrow, 8, 48, 2, 1)},
		{"14w_8s", base(short, wider, 16, 14, 8, 1)},
		{"next_16w_4s_8x", base(short, narrow, 8, 16, 4, 8)}, // groups of 1, 2, 4 and 8 channels
		{"d", deep},
		{"101", base(l101, narrow, 8, 26, 4, 1)},
	}
}

// splitChannels cuts an N x C x H x W tensor into C/width tensors of width channels.
func splitChannels(x *ops.Tensor, width int) []*ops.Tensor {
	n, c, hw := x.Shape[0], x.Shape[1], x.Shape[2]*x.Shape[3]
	var parts []*ops.Tensor
	for g := 0; g < c/width; g++ {
		p := ops.New(n, width, x.Shape[2], x.Shape[3])
		for i := range n {
			copy(p.Data[i*width*hw:(i+1)*width*hw], x.Data[(i*c+g*width)*hw:])
		}
		parts = append(parts, p)
	}
	return parts
}

// concatChannels joins N x Ci x H x W tensors along channels.
func concatChannels(parts []*ops.Tensor) *ops.Tensor {
	n, hw := parts[0].Shape[0], parts[0].Shape[2]*parts[0].Shape[3]
	c := 0
	for _, p := range parts {
		c += p.Shape[1]
	}
	out := ops.New(n, c, parts[0].Shape[2], parts[0].Shape[3])
	for i := range n {
		off := i * c * hw
		for _, p := range parts {
			pc := p.Shape[1] * hw
			off += copy(out.Data[off:], p.Data[i*pc:(i+1)*pc])
		}
	}
	return out
}

func addTensors(a, b *ops.Tensor) *ops.Tensor {
	out := ops.New(a.Shape...)
	ops.Add(out.Data, a.Data, b.Data)
	return out
}

// assertLogits fails unless got and want agree within
// tol * max(1, max|want|), the parity criterion of the project.
func assertLogits(t *testing.T, got, want *ops.Tensor, tol float64) {
	t.Helper()
	if !ops.SameShape(got.Shape, want.Shape) {
		t.Fatalf("logits shape %s, want %s", ops.ShapeString(got.Shape), ops.ShapeString(want.Shape))
	}
	scale, worst := 1.0, 0.0
	for i := range want.Data {
		scale = math.Max(scale, math.Abs(float64(want.Data[i])))
		worst = math.Max(worst, math.Abs(float64(got.Data[i]-want.Data[i])))
	}
	if worst > tol*scale || math.IsNaN(worst) {
		t.Errorf("max |logit diff| = %g > %g (max |logit| %g)", worst, tol*scale, scale)
	} else {
		t.Logf("max |logit diff| = %g, tolerance %g", worst, tol*scale)
	}
}

func TestForwardMatchesReference(t *testing.T) {
	narrow := tinyConfig()
	narrow.Layers = [4]int{2, 1, 2, 1}
	twoScales := narrow
	twoScales.Scale = 2
	oneScale := narrow
	oneScale.Scale = 1
	// The identity fits features.4.0, so it has no downsample and its unit
	// cascades (Holocron's rule), unlike every other first block.
	noDownsample := narrow
	noDownsample.StemChannels = 16

	type forwardCase struct {
		name    string
		cfg     Config
		n, h, w int
		threads int
	}
	tests := []forwardCase{
		{"tiny", tinyConfig(), 2, 64, 64, 1},
		{"stem image by image", tinyConfig(), 2, 128, 128, 1}, // 64x64 stem outputs
		{"tiny odd size", tinyConfig(), 1, 37, 45, 1},
		{"tiny threads", tinyConfig(), 3, 33, 40, 2},
		{"scale 2", twoScales, 2, 29, 31, 2},
		{"scale 1", oneScale, 1, 32, 32, 1},
		{"identity shortcut", noDownsample, 2, 30, 30, 1},
		{"1x1 input", narrow, 2, 1, 1, 1},
	}
	// Every structural kind of the timm family, at an odd size that the
	// avg-pool shortcut's ceil mode sees.
	for _, k := range tinyKinds() {
		tests = append(tests, forwardCase{"timm " + k.name, k.cfg, 2, 35, 29, 2})
	}
	holocronNext := tinyKinds()[3].cfg
	holocronNext.Layout = LayoutHolocron
	tests = append(tests, forwardCase{"holocron cardinality 8", holocronNext, 1, 32, 32, 1})
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tensors := randomStateDict(tc.cfg, uint64(i))
			x := randomInput(uint64(i), tc.n, 3, tc.h, tc.w)
			want := referenceForward(tc.cfg, tensors, x)
			m := newRunner(t, tc.cfg, cloneStateDict(tensors))
			m.SetThreads(tc.threads)
			// Twice: the second call reuses the buffers the first left dirty.
			for range 2 {
				got, err := m.Forward(x)
				if err != nil {
					t.Fatal(err)
				}
				assertLogits(t, got, want, 1e-4)
			}
		})
	}
}

func TestForwardBatchMatchesSingleImages(t *testing.T) {
	cfg := tinyConfig()
	m := newRunner(t, cfg, randomStateDict(cfg, 5))
	// Enough images for several rounds of groups, full and partial.
	images := 2*maxGroup + 3
	x := randomInput(5, images, 3, 24, 24)
	per := 3 * 24 * 24
	for _, threads := range []int{1, 2} {
		m.SetThreads(threads)
		batch, err := m.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		m.SetThreads(1)
		for i := range images {
			one, _ := ops.FromData(x.Data[i*per:(i+1)*per], 1, 3, 24, 24)
			got, err := m.Forward(one)
			if err != nil {
				t.Fatal(err)
			}
			want, _ := ops.FromData(batch.Data[i*cfg.Classes:(i+1)*cfg.Classes], 1, cfg.Classes)
			assertLogits(t, got, want, 1e-6)
		}
	}
}

// TestRunnersWithOwnThreadsRunConcurrently runs two networks with different
// thread counts at the same time: each must give the logits it gives alone
// and leave the process-wide GEMM thread count alone.
func TestRunnersWithOwnThreadsRunConcurrently(t *testing.T) {
	defer gemm.SetThreads(gemm.Threads())
	const global = 5
	gemm.SetThreads(global)
	cfg := tinyConfig()
	runs := []struct {
		threads int
		x       *ops.Tensor
	}{
		// One group of 3 images, GEMMs on 1 thread; then 2 groups of 1
		// image, GEMMs on 2 threads each, with the stem image by image.
		{1, randomInput(8, 3, 3, 40, 40)},
		{4, randomInput(9, 2, 3, 128, 128)},
	}
	models := make([]*Runner, len(runs))
	alone := make([]*ops.Tensor, len(runs))
	for i, r := range runs {
		m := newRunner(t, cfg, randomStateDict(cfg, uint64(10+i)))
		m.SetThreads(r.threads)
		var err error
		if alone[i], err = m.Forward(r.x); err != nil {
			t.Fatal(err)
		}
		models[i] = m
	}
	got := make([][]*ops.Tensor, len(runs))
	var wg sync.WaitGroup
	for i, m := range models {
		wg.Go(func() {
			for range 3 {
				logits, err := m.Forward(runs[i].x)
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = append(got[i], logits)
			}
		})
	}
	wg.Wait()
	for i := range runs {
		for _, logits := range got[i] {
			assertLogits(t, logits, alone[i], 0)
		}
	}
	if n := gemm.Threads(); n != global {
		t.Errorf("gemm.Threads() = %d after Forward, want %d: a Runner changed the process-wide count", n, global)
	}
}

func TestNewReportsEveryProblem(t *testing.T) {
	cfg := tinyConfig()
	tensors := randomStateDict(cfg, 1)
	delete(tensors, "features.5.1.conv.3.conv.2.1.running_var")
	delete(tensors, "head.bias")
	tensors["features.4.0.conv.0.weight"] = ops.New(4, 8, 3, 3)
	tensors["features.8.0.conv.0.weight"] = ops.New(2, 2)
	tensors["features.1.num_batches_tracked"] = ops.New() // ignored

	_, err := New(cfg, tensors)
	if err == nil {
		t.Fatal("New accepted a broken state dict")
	}
	for _, want := range []string{
		"4 problems",
		"features.5.1.conv.3.conv.2.1.running_var: missing (shape 3 expected)",
		"head.bias: missing (shape 10 expected)",
		"features.4.0.conv.0.weight: shape 4x8x1x1 expected, checkpoint has 4x8x3x3",
		"features.8.0.conv.0.weight: unexpected (shape 2x2)",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %q:\n%v", want, err)
		}
	}
}

func TestNewInfersClasses(t *testing.T) {
	cfg := tinyConfig()
	cfg.Classes = 7
	tensors := randomStateDict(cfg, 2)
	cfg.Classes = 0
	net, err := New(cfg, tensors)
	if err != nil {
		t.Fatal(err)
	}
	if got := net.Config().Classes; got != 7 {
		t.Errorf("Classes = %d, want 7 from head.weight", got)
	}
	out, err := net.NewRunner().Forward(randomInput(1, 1, 3, 16, 16))
	if err != nil {
		t.Fatal(err)
	}
	if !ops.SameShape(out.Shape, []int{1, 7}) {
		t.Errorf("logits shape %v", out.Shape)
	}

	delete(tensors, "head.weight")
	if _, err := New(cfg, tensors); err == nil || !strings.Contains(err.Error(), "head.weight") {
		t.Errorf("without head.weight: %v", err)
	}
	cfg.Classes = 10
	cfg.Scale = 0
	if _, err := New(cfg, tensors); err == nil || !strings.Contains(err.Error(), "Scale is 0") {
		t.Errorf("invalid config: %v", err)
	}
}

func TestForwardRejectsBadInput(t *testing.T) {
	cfg := tinyConfig()
	m := newRunner(t, cfg, randomStateDict(cfg, 3))
	for _, x := range []*ops.Tensor{
		ops.New(3, 16, 16),
		ops.New(1, 4, 16, 16),
		ops.New(0, 3, 16, 16),
		ops.New(1, 3, 0, 16),
		{Shape: []int{1, 3, 4, 4}, Data: make([]float32, 47)},
	} {
		if _, err := m.Forward(x); err == nil {
			t.Errorf("input %v with %d values accepted", x.Shape, len(x.Data))
		}
	}
}

func TestForwardReusesBuffers(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under the race detector")
	}
	cfg := tinyConfig()
	m := newRunner(t, cfg, randomStateDict(cfg, 4))
	m.SetThreads(1)
	// 128x128, so that the stem runs image by image too.
	x := randomInput(4, 2, 3, 128, 128)
	if _, err := m.Forward(x); err != nil {
		t.Fatal(err)
	}
	// Only the returned logits tensor (struct, shape, data) is new; the
	// network has ~100 layers, so any per-layer allocation shows.
	allocs := testing.AllocsPerRun(5, func() {
		if _, err := m.Forward(x); err != nil {
			t.Fatal(err)
		}
	})
	if allocs > 3 {
		t.Errorf("steady-state Forward allocates %.0f times, want at most 3", allocs)
	}
}

// clampReLU clamps x at zero in place: the explicit ReLU of the reference
// forward, which the network itself fuses into its GEMMs.
func clampReLU(x []float32) {
	for i, v := range x {
		x[i] = max(v, 0)
	}
}

// TestEmbedAndFeatureMaps checks the outputs before the head against the
// logits: pooling the feature maps gives the embedding, and the head on the
// embedding gives the logits.
func TestEmbedAndFeatureMaps(t *testing.T) {
	cfg := tinyConfig()
	net, err := New(cfg, randomStateDict(cfg, 21))
	if err != nil {
		t.Fatal(err)
	}
	x := randomInput(21, 3, 3, 40, 36)
	for _, threads := range []int{1, 2} {
		r := net.NewRunner()
		r.SetThreads(threads)
		logits, err := r.Forward(x)
		if err != nil {
			t.Fatal(err)
		}
		emb, err := r.Embed(x)
		if err != nil {
			t.Fatal(err)
		}
		maps, err := r.FeatureMaps(x)
		if err != nil {
			t.Fatal(err)
		}
		f := net.Features()
		oh, ow := net.OutSize(40, 36)
		if want := []int{3, f, oh, ow}; !ops.SameShape(maps.Shape, want) || oh != 2 || ow != 2 {
			t.Fatalf("feature maps %v, want %v (2x2 for 40x36)", maps.Shape, want)
		}
		if !ops.SameShape(emb.Shape, []int{3, f}) {
			t.Fatalf("embedding %v, want 3x%d", emb.Shape, f)
		}
		pooled := ops.New(3, f)
		for i := range 3 {
			ops.GlobalAvgPool(pooled.Data[i*f:], maps.Data[i*f*oh*ow:], f, oh*ow)
		}
		assertLogits(t, emb, pooled, 1e-6)
		head := net.Head()
		assertLogits(t, logits, ops.LinearRef(emb, &ops.Tensor{Shape: []int{head.Out, head.In}, Data: head.Weight}, head.Bias), 1e-5)
		for _, v := range maps.Data {
			if v < 0 {
				t.Fatal("feature maps have negative values: not after the ReLU")
			}
		}
	}
}

// TestRunnersShareNetwork runs several runners on one network at once (run
// it with -race): each must give the logits a runner gives alone.
func TestRunnersShareNetwork(t *testing.T) {
	cfg := tinyConfig()
	net, err := New(cfg, randomStateDict(cfg, 22))
	if err != nil {
		t.Fatal(err)
	}
	x := randomInput(22, 3, 3, 48, 48)
	want, err := net.NewRunner().Forward(x)
	if err != nil {
		t.Fatal(err)
	}
	const runners = 4
	got := make([][]*ops.Tensor, runners)
	var wg sync.WaitGroup
	for i := range runners {
		wg.Go(func() {
			r := net.NewRunner()
			r.SetThreads(1 + i%2)
			for range 2 {
				logits, err := r.Forward(x)
				if err != nil {
					t.Error(err)
					return
				}
				got[i] = append(got[i], logits)
			}
		})
	}
	wg.Wait()
	for i := range runners {
		if len(got[i]) != 2 {
			t.Fatalf("runner %d: %d results", i, len(got[i]))
		}
		for _, logits := range got[i] {
			assertLogits(t, logits, want, 0)
		}
	}
}

// TestObserveConvs: an observed pass reports every conv of Summary once
// (a block runs its shortcut before its last conv, so not in Summary's
// order), with its MACs for the batch, and stops when the observer is
// removed.
func TestObserveConvs(t *testing.T) {
	cfg := tinyConfig()
	m := newRunner(t, cfg, randomStateDict(cfg, 3))
	m.SetThreads(1)
	const n, size = 2, 40
	var want []int64
	for _, l := range cfg.Summary(size, size) {
		if l.Type == TypeConv {
			want = append(want, n*l.MACs)
		}
	}
	var got []int64
	m.ObserveConvs(func(c *ops.Conv2d, imgs, h, w int, took time.Duration) {
		if took < 0 {
			t.Errorf("conv %d->%d took %v", c.InC, c.OutC, took)
		}
		got = append(got, c.MACs(imgs, h, w))
	})
	x := randomInput(4, n, 3, size, size)
	if _, err := m.Forward(x); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("observed MACs %v\nwant Summary's %v", got, want)
	}
	m.ObserveConvs(nil)
	got = nil
	if _, err := m.Forward(x); err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("%d convs observed after ObserveConvs(nil)", len(got))
	}
}
