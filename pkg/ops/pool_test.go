package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestPoolsMatchReference(t *testing.T) {
	tests := []struct {
		n, c, h, w int
		p          Pool2d
	}{
		{2, 3, 9, 11, Pool2d{Kernel: 3, Stride: 2, Pad: 1}},
		{2, 3, 8, 8, Pool2d{Kernel: 3, Stride: 2, Pad: 1}},
		{2, 4, 7, 5, Pool2d{Kernel: 3, Stride: 1, Pad: 1}},
		{3, 2, 1, 1, Pool2d{Kernel: 3, Stride: 2, Pad: 1}},
		{1, 2, 2, 3, Pool2d{Kernel: 3, Stride: 1, Pad: 1}},
		{1, 2, 5, maxSeparableWidth + 3, Pool2d{Kernel: 3, Stride: 2, Pad: 1}}, // too wide for pool3
		{2, 2, 10, 9, Pool2d{Kernel: 2, Stride: 2, Pad: 0}},
		{2, 2, 11, 12, Pool2d{Kernel: 5, Stride: 3, Pad: 2}},
		// timm's avg-pool shortcut on odd and even sizes, and other ceil modes.
		{2, 3, 7, 9, Pool2d{Kernel: 2, Stride: 2, CeilMode: true, ExcludePad: true}},
		{2, 3, 8, 6, Pool2d{Kernel: 2, Stride: 2, CeilMode: true, ExcludePad: true}},
		{1, 2, 1, 1, Pool2d{Kernel: 2, Stride: 2, CeilMode: true, ExcludePad: true}},
		{2, 2, 7, 8, Pool2d{Kernel: 3, Stride: 2, Pad: 1, CeilMode: true}},
		{2, 2, 6, 7, Pool2d{Kernel: 3, Stride: 2, Pad: 1, CeilMode: true, ExcludePad: true}},
		{2, 2, 5, 6, Pool2d{Kernel: 3, Stride: 1, Pad: 1, ExcludePad: true}},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("n%d_c%d_%dx%d_%+v", tc.n, tc.c, tc.h, tc.w, tc.p), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(3, uint64(tc.h*tc.w)))
			x := randTensor(rng, tc.n, tc.c, tc.h, tc.w)
			oh, ow := tc.p.OutSize(tc.h, tc.w)
			ops := []struct {
				name string
				run  func(dst, src []float32, c, h, w int)
				ref  func(*Tensor, Pool2d) *Tensor
			}{
				{"max", tc.p.Max, MaxPool2dRef},
				{"avg", tc.p.Avg, AvgPool2dRef},
			}
			for _, op := range ops {
				want := op.ref(x, tc.p)
				if !SameShape(want.Shape, []int{tc.n, tc.c, oh, ow}) {
					t.Fatalf("%s: reference shape %v, OutSize says %dx%d", op.name, want.Shape, oh, ow)
				}
				got := New(want.Shape...)
				fill(got.Data, float32(nan()))
				in, out := tc.c*tc.h*tc.w, tc.c*oh*ow
				for b := range tc.n {
					op.run(got.Data[b*out:], x.Data[b*in:(b+1)*in], tc.c, tc.h, tc.w)
				}
				assertClose(t, op.name, got.Data, want.Data, 1e-6)
			}
		})
	}
}

func TestAvgPoolCountsPadding(t *testing.T) {
	// All ones: a corner window of AvgPool2d(3, 1, 1) sees 4 ones and 5 zeros
	// of padding, an edge window 6, the centre 9 (count_include_pad=True).
	src := []float32{1, 1, 1, 1, 1, 1, 1, 1, 1}
	dst := make([]float32, 9)
	Pool2d{Kernel: 3, Stride: 1, Pad: 1}.Avg(dst, src, 1, 3, 3)
	want := []float32{4. / 9, 6. / 9, 4. / 9, 6. / 9, 1, 6. / 9, 4. / 9, 6. / 9, 4. / 9}
	assertClose(t, "avg", dst, want, 1e-7)
	assertClose(t, "ref", AvgPool2dRef(&Tensor{Shape: []int{1, 1, 3, 3}, Data: src}, Pool2d{Kernel: 3, Stride: 1, Pad: 1}).Data, want, 1e-7)
}

func TestAvgPoolExcludesPaddingInCeilMode(t *testing.T) {
	// 3x3 input 1..9, AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False):
	// a 2x2 output whose right and bottom windows hang over the image and
	// divide by the pixels they hold (2, 2 and 1).
	src := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9}
	p := Pool2d{Kernel: 2, Stride: 2, CeilMode: true, ExcludePad: true}
	if oh, ow := p.OutSize(3, 3); oh != 2 || ow != 2 {
		t.Fatalf("OutSize(3, 3) = %dx%d, want 2x2", oh, ow)
	}
	dst := make([]float32, 4)
	p.Avg(dst, src, 1, 3, 3)
	want := []float32{3, 4.5, 7.5, 9}
	assertClose(t, "avg", dst, want, 1e-7)
	assertClose(t, "ref", AvgPool2dRef(&Tensor{Shape: []int{1, 1, 3, 3}, Data: src}, p).Data, want, 1e-7)
}

func TestMaxPoolIgnoresPadding(t *testing.T) {
	// All negative: padding must not contribute a zero maximum.
	src := []float32{-1, -2, -3, -4}
	dst := make([]float32, 1)
	Pool2d{Kernel: 3, Stride: 2, Pad: 1}.Max(dst, src, 1, 2, 2)
	if dst[0] != -1 {
		t.Errorf("max = %g, want -1", dst[0])
	}
}

func TestGlobalAvgPool(t *testing.T) {
	// Channel ch holds 1..hw plus ch, so its mean is (hw+1)/2 + ch.
	const c, hw = 3, 49
	src := make([]float32, c*hw)
	for ch := range c {
		for i := range hw {
			src[ch*hw+i] = float32(i + 1 + ch)
		}
	}
	dst := make([]float32, c)
	GlobalAvgPool(dst, src, c, hw)
	assertClose(t, "gap", dst, []float32{25, 26, 27}, 0)
}

func benchPool(b *testing.B, pool func(dst, src []float32, c, h, w int), p Pool2d, c, h, w int) {
	rng := rand.New(rand.NewPCG(1, 2))
	src := randTensor(rng, c, h, w).Data
	oh, ow := p.OutSize(h, w)
	dst := make([]float32, c*oh*ow)
	for b.Loop() {
		pool(dst, src, c, h, w)
	}
}

func BenchmarkMaxPool(b *testing.B) {
	// features.3: 64 x 112 x 112 -> 64 x 56 x 56.
	p := Pool2d{Kernel: 3, Stride: 2, Pad: 1}
	benchPool(b, p.Max, p, 64, 112, 112)
}

func BenchmarkAvgPool(b *testing.B) {
	// features.4.0.conv.3.downsample: 26 x 56 x 56, stride 1.
	p := Pool2d{Kernel: 3, Stride: 1, Pad: 1}
	benchPool(b, p.Avg, p, 26, 56, 56)
}

func BenchmarkAvgPoolStride2(b *testing.B) {
	// features.5.0.conv.3.downsample: 52 x 56 x 56 -> 52 x 28 x 28.
	p := Pool2d{Kernel: 3, Stride: 2, Pad: 1}
	benchPool(b, p.Avg, p, 52, 56, 56)
}
