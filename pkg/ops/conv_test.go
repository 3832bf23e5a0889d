package ops

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

func TestConv2dMatchesReference(t *testing.T) {
	tests := []struct {
		n, inC, outC, h, w, k, stride, pad int
		groups                             int // 0 means 1
		bias, relu, residual               bool
		threads                            int // for the batch; 0 means gemm.Threads()
	}{
		{n: 2, inC: 5, outC: 7, h: 9, w: 11, k: 1, stride: 1, pad: 0},
		{n: 3, inC: 5, outC: 7, h: 9, w: 11, k: 1, stride: 1, pad: 0, bias: true, relu: true, residual: true},
		{n: 2, inC: 6, outC: 4, h: 9, w: 7, k: 1, stride: 2, pad: 0, bias: true},
		{n: 2, inC: 6, outC: 4, h: 8, w: 10, k: 1, stride: 2, pad: 0, residual: true},
		{n: 2, inC: 3, outC: 5, h: 7, w: 9, k: 3, stride: 1, pad: 1, bias: true, relu: true},
		{n: 2, inC: 3, outC: 5, h: 7, w: 9, k: 3, stride: 2, pad: 1, bias: true, relu: true},
		{n: 2, inC: 4, outC: 3, h: 10, w: 8, k: 3, stride: 2, pad: 1},
		{n: 1, inC: 2, outC: 3, h: 6, w: 6, k: 3, stride: 1, pad: 0, residual: true},
		{n: 2, inC: 3, outC: 8, h: 13, w: 11, k: 7, stride: 2, pad: 3, bias: true, relu: true},
		{n: 2, inC: 2, outC: 3, h: 3, w: 2, k: 7, stride: 2, pad: 3},
		{n: 2, inC: 3, outC: 2, h: 1, w: 1, k: 3, stride: 2, pad: 1, bias: true},
		{n: 2, inC: 26, outC: 26, h: 14, w: 14, k: 3, stride: 1, pad: 1, bias: true, relu: true},
		{n: 2, inC: 2, outC: 3, h: 1, w: 1, k: 3, stride: 1, pad: 1},
		{n: 2, inC: 2, outC: 3, h: 2, w: 1, k: 3, stride: 1, pad: 1, bias: true},
		{n: 1, inC: 2, outC: 3, h: 1, w: 3, k: 3, stride: 1, pad: 1},
		{n: 2, inC: 3, outC: 4, h: 7, w: 2, k: 5, stride: 1, pad: 2, residual: true},
		{n: 2, inC: 3, outC: 4, h: 6, w: 9, k: 5, stride: 1, pad: 2, relu: true},
		// Images wide enough (65x64 and 64x65 outputs) to run one by one.
		{n: 3, inC: 3, outC: 4, h: 130, w: 127, k: 7, stride: 2, pad: 3, bias: true, relu: true, residual: true, threads: 2},
		{n: 2, inC: 3, outC: 8, h: 96, w: 96, k: 7, stride: 2, pad: 3, bias: true, relu: true, threads: 2},
		{n: 2, inC: 2, outC: 3, h: 64, w: 65, k: 3, stride: 1, pad: 1, residual: true, threads: 1},
		// Wide enough for column blocks (see colBlocks): one image at a
		// time, and blocks that span two images of a batch.
		{n: 2, inC: 16, outC: 5, h: 70, w: 64, k: 3, stride: 1, pad: 1, bias: true, relu: true, residual: true, threads: 2},
		{n: 3, inC: 20, outC: 6, h: 30, w: 40, k: 3, stride: 1, pad: 1, residual: true, threads: 2},
		{n: 3, inC: 20, outC: 6, h: 30, w: 40, k: 3, stride: 1, pad: 1, bias: true, threads: 1},
		// Two blocks of 3 and 2 rows on 2 threads: either goroutine may
		// lower the 3-row block, so each slot must hold a whole block.
		{n: 1, inC: 14, outC: 3, h: 5, w: 520, k: 3, stride: 1, pad: 1, relu: true, threads: 2},
		// Grouped: Res2NeXt's 8 groups of 4 channels, at both strides; a
		// grouped 1x1 (direct and strided) and groups of unequal in and out.
		{n: 2, inC: 32, outC: 32, h: 9, w: 8, k: 3, stride: 1, pad: 1, groups: 8, bias: true, relu: true},
		{n: 3, inC: 32, outC: 32, h: 9, w: 11, k: 3, stride: 2, pad: 1, groups: 8, residual: true, threads: 2},
		{n: 2, inC: 6, outC: 9, h: 5, w: 7, k: 1, stride: 1, pad: 0, groups: 3, bias: true, residual: true},
		{n: 2, inC: 6, outC: 4, h: 5, w: 7, k: 1, stride: 2, pad: 0, groups: 2, relu: true},
		{n: 1, inC: 8, outC: 4, h: 66, w: 64, k: 3, stride: 1, pad: 1, groups: 4, bias: true},
	}
	for _, tc := range tests {
		groups := max(tc.groups, 1)
		name := fmt.Sprintf("n%d_%dto%d_%dx%d_k%d_s%d_p%d_g%d_b%v_r%v_res%v", tc.n, tc.inC, tc.outC, tc.h, tc.w,
			tc.k, tc.stride, tc.pad, groups, tc.bias, tc.relu, tc.residual)
		t.Run(name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.k*100+tc.h)))
			// The input images are the middle channels of wider images and the
			// outputs go to the middle of wider images, as Res2Net's splits do.
			const extra = 2
			x := randTensor(rng, tc.n, tc.inC+2*extra, tc.h, tc.w)
			weight := randTensor(rng, tc.outC, tc.inC/groups, tc.k, tc.k)
			conv := Conv2d{InC: tc.inC, OutC: tc.outC, Kernel: tc.k, Stride: tc.stride, Pad: tc.pad,
				Groups: tc.groups, Weight: weight.Data, ReLU: tc.relu}
			if tc.bias {
				conv.Bias = randTensor(rng, tc.outC).Data
			}
			oh, ow := conv.OutSize(tc.h, tc.w)
			var res *Tensor
			if tc.residual {
				res = randTensor(rng, tc.n, tc.outC, oh, ow)
			}

			// Reference: the middle channels, convolved, then residual and ReLU.
			inner := New(tc.n, tc.inC, tc.h, tc.w)
			hw := tc.h * tc.w
			for b := range tc.n {
				copy(inner.Data[b*tc.inC*hw:], x.Data[(b*(tc.inC+2*extra)+extra)*hw:][:tc.inC*hw])
			}
			want := Conv2dRef(inner, weight, conv.Bias, tc.stride, tc.pad, groups)
			if res != nil {
				Add(want.Data, want.Data, res.Data)
			}
			if tc.relu {
				reluRef(want.Data)
			}

			got := New(tc.n, tc.outC+2*extra, oh, ow)
			fill(got.Data, -7)
			col := make([]float32, conv.ColSize(1, tc.h, tc.w)+5)
			ohw := oh * ow
			for b := range tc.n {
				fill(col, float32(nan()))
				src := x.Data[(b*(tc.inC+2*extra)+extra)*hw : (b*(tc.inC+2*extra)+extra+tc.inC)*hw]
				dst := got.Data[(b*(tc.outC+2*extra)+extra)*ohw:]
				var r []float32
				if res != nil {
					r = res.Data[b*tc.outC*ohw:]
				}
				conv.Forward(dst, src, 1, tc.h, tc.w, r, Exec{Col: col})
			}
			for b := range tc.n {
				img := got.Data[b*(tc.outC+2*extra)*ohw : (b+1)*(tc.outC+2*extra)*ohw]
				for i, v := range img[:extra*ohw] {
					if v != -7 || img[len(img)-1-i] != -7 {
						t.Fatalf("image %d: Forward wrote outside its channel range", b)
					}
				}
				assertClose(t, fmt.Sprintf("image %d", b), img[extra*ohw:(extra+tc.outC)*ohw],
					want.Data[b*tc.outC*ohw:(b+1)*tc.outC*ohw], 1e-5)
			}

			// The whole batch in one call, channel-major, from the weights
			// as they are and packed, by default and for narrow products
			// (the hint need not be the real width).
			wantCM := channelMajor(want)
			for _, columns := range []int{-1, 0, 49} {
				conv := conv
				packed := columns >= 0
				if packed {
					conv.Columns = columns
					conv.Pack()
				}
				src := channelMajor(x)[extra*tc.n*hw:]
				var r []float32
				if res != nil {
					r = channelMajor(res)
				}
				dst := make([]float32, (tc.outC+2*extra)*tc.n*ohw)
				fill(dst, -7)
				col := make([]float32, conv.ColSize(tc.n, tc.h, tc.w)+5)
				fill(col, float32(nan()))
				conv.Forward(dst[extra*tc.n*ohw:], src, tc.n, tc.h, tc.w, r, Exec{Col: col, Threads: tc.threads})
				border := extra * tc.n * ohw
				for i, v := range dst[:border] {
					if v != -7 || dst[len(dst)-1-i] != -7 {
						t.Fatalf("batch (packed %v, columns %d): Forward wrote outside its channel range", packed, columns)
					}
				}
				assertClose(t, fmt.Sprintf("batch (packed %v, columns %d)", packed, columns), dst[border:len(dst)-border], wantCM, 1e-5)
			}
		})
	}
}

func TestConv2dColSize(t *testing.T) {
	tests := []struct {
		conv Conv2d
		want int
	}{
		{Conv2d{InC: 8, Kernel: 1, Stride: 1}, 0},
		{Conv2d{InC: 8, Kernel: 1, Stride: 2}, 8 * 5 * 5},
		{Conv2d{InC: 8, Kernel: 3, Stride: 1, Pad: 1}, 8 * 9 * 9 * 9},
		// A stride-2 conv also holds its input's phases (see phased).
		{Conv2d{InC: 3, Kernel: 7, Stride: 2, Pad: 3}, 3*49*5*5 + 3*9*9},
	}
	for _, tc := range tests {
		if got := tc.conv.ColSize(1, 9, 9); got != tc.want {
			t.Errorf("%+v: ColSize(1, 9, 9) = %d, want %d", tc.conv, got, tc.want)
		}
		if got := tc.conv.ColSize(3, 9, 9); got != 3*tc.want {
			t.Errorf("%+v: ColSize(3, 9, 9) = %d, want %d", tc.conv, got, 3*tc.want)
		}
	}
	// The 224x224 stem runs image by image: its scratch is one image's.
	stem := Conv2d{InC: 3, Kernel: 7, Stride: 2, Pad: 3}
	if got, want := stem.ColSize(8, 224, 224), 3*49*112*112+3*224*224; got != want {
		t.Errorf("stem: ColSize(8, 224, 224) = %d, want %d", got, want)
	}
}

func TestInside(t *testing.T) {
	// Brute force over small geometries: [lo, hi) must be exactly the outputs
	// whose input falls in the image.
	for n := range 6 {
		for size := range 6 {
			for off := -4; off <= 4; off++ {
				for stride := 1; stride <= 3; stride++ {
					lo, hi := inside(n, size, off, stride)
					for o := range n {
						in := o*stride+off >= 0 && o*stride+off < size
						if in != (o >= lo && o < hi) {
							t.Fatalf("inside(%d, %d, %d, %d) = [%d, %d), wrong at %d", n, size, off, stride, lo, hi, o)
						}
					}
				}
			}
		}
	}
}

// benchConv times conv (random weights, packed as the network packs
// them) on a batch of n h x w images, one thread, reporting the GEMM rate.
func benchConv(b *testing.B, conv Conv2d, n, h, w int) {
	rng := rand.New(rand.NewPCG(1, 2))
	conv.Weight = randTensor(rng, conv.OutC, conv.InC, conv.Kernel, conv.Kernel).Data
	conv.Bias = randTensor(rng, conv.OutC).Data
	conv.ReLU = true
	conv.Pack()
	oh, ow := conv.OutSize(h, w)
	src := randTensor(rng, conv.InC, n, h, w).Data
	dst := make([]float32, conv.OutC*n*oh*ow)
	col := make([]float32, conv.ColSize(n, h, w))
	macs := float64(n * conv.OutC * conv.InC * conv.Kernel * conv.Kernel * oh * ow)
	for b.Loop() {
		conv.Forward(dst, src, n, h, w, nil, Exec{Col: col, Threads: 1})
	}
	b.ReportMetric(macs*float64(b.N)/b.Elapsed().Seconds()/1e9, "GMAC/s")
}

func BenchmarkConv1x1(b *testing.B) {
	// features.4.1.conv.0: 256 -> 104 channels at 56x56.
	benchConv(b, Conv2d{InC: 256, OutC: 104, Kernel: 1, Stride: 1}, 1, 56, 56)
}

func BenchmarkConv1x1Stride2(b *testing.B) {
	// features.5.0.downsample.0: 256 -> 512 channels, 56x56 -> 28x28.
	benchConv(b, Conv2d{InC: 256, OutC: 512, Kernel: 1, Stride: 2}, 1, 56, 56)
}

func BenchmarkConv3x3(b *testing.B) {
	// A branch of features.4.B.conv.3: 26 -> 26 channels at 56x56.
	benchConv(b, Conv2d{InC: 26, OutC: 26, Kernel: 3, Stride: 1, Pad: 1}, 1, 56, 56)
}

func BenchmarkConv3x3Deep(b *testing.B) {
	// A branch of features.7.B.conv.3: 208 -> 208 channels at 7x7.
	benchConv(b, Conv2d{InC: 208, OutC: 208, Kernel: 3, Stride: 1, Pad: 1}, 1, 7, 7)
}

func BenchmarkConvStem(b *testing.B) {
	// features.0: 3 -> 64 channels, 7x7 stride 2 at 224x224.
	benchConv(b, Conv2d{InC: 3, OutC: 64, Kernel: 7, Stride: 2, Pad: 3}, 1, 224, 224)
}

func TestConvColBlocks(t *testing.T) {
	tests := []struct {
		name              string
		conv              Conv2d
		n, h, w, threads  int
		wantRows, wantBlk int
	}{
		{"stem", Conv2d{InC: 3, Kernel: 7, Stride: 2, Pad: 3}, 1, 224, 224, 1, 7, 16},
		{"stage 1 branch", Conv2d{InC: 26, Kernel: 3, Stride: 1, Pad: 1}, 1, 56, 56, 1, 12, 5},
		{"stage 1 branch, 2 threads", Conv2d{InC: 26, Kernel: 3, Stride: 1, Pad: 1}, 1, 56, 56, 2, 10, 6},
		{"stage 3 branch", Conv2d{InC: 104, Kernel: 3, Stride: 1, Pad: 1}, 1, 14, 14, 2, 14, 1},
		// In the m-vector layout, a block per thread.
		{"stage 3 branch, m-vector", mvecConv(104, 3, 14*14), 1, 14, 14, 1, 14, 1},
		{"stage 3 branch, m-vector, 2 threads", mvecConv(104, 3, 14*14), 1, 14, 14, 2, 7, 2},
		{"stage 4 branch, m-vector, 2 threads: 7 rows do not halve", mvecConv(208, 3, 7*7), 1, 7, 7, 2, 7, 1},
		{"stage 3 branch, m-vector, batch 8, 2 threads", mvecConv(104, 3, 14*14), 8, 14, 14, 2, 28, 4},
		{"stage 3 branch, batch 8", Conv2d{InC: 104, Kernel: 3, Stride: 1, Pad: 1}, 8, 14, 14, 1, 38, 3},
		{"stage 3 branch, batch 8, 2 threads", Conv2d{InC: 104, Kernel: 3, Stride: 1, Pad: 1}, 8, 14, 14, 2, 28, 4},
		{"blocks across images", Conv2d{InC: 20, Kernel: 3, Stride: 1, Pad: 1}, 3, 30, 40, 1, 18, 5},
		{"no more blocks than rows", Conv2d{InC: 20, Kernel: 3, Stride: 1, Pad: 1}, 1, 3, 600, 4, 1, 3},
		{"a short last block", Conv2d{InC: 14, Kernel: 3, Stride: 1, Pad: 1}, 1, 5, 520, 2, 3, 2},
	}
	for _, tc := range tests {
		oh, ow := tc.conv.OutSize(tc.h, tc.w)
		p := convPass{c: &tc.conv, n: tc.n, h: tc.h, w: tc.w, oh: oh, ow: ow}
		rows, blocks := p.colBlocks(tc.threads)
		if rows != tc.wantRows || blocks != tc.wantBlk {
			t.Errorf("%s: colBlocks() = %d rows x %d blocks, want %d x %d", tc.name, rows, blocks, tc.wantRows, tc.wantBlk)
		}
		if blocks == 1 {
			continue // one product on all threads, no slots
		}
		// Every goroutine's slot must hold a whole block within the pass's rows.
		p.blockRows = rows
		if threads := p.blockThreads(tc.threads); threads*rows > tc.n*oh || threads < 1 || threads > tc.threads {
			t.Errorf("%s: blockThreads(%d) = %d, with %d-row slots in %d rows", tc.name, tc.threads, threads, rows, tc.n*oh)
		}
	}
}

// mvecConv returns a packed conv of c channels to c with a k x k kernel
// for outputs of columns positions, in the m-vector layout where this CPU
// has it.
func mvecConv(c, k, columns int) Conv2d {
	conv := Conv2d{InC: c, OutC: c, Kernel: k, Stride: 1, Pad: k / 2, Columns: columns,
		Weight: make([]float32, c*c*k*k)}
	conv.Pack()
	return conv
}

func BenchmarkConv3x3Batch8(b *testing.B) {
	// The branch of BenchmarkConv3x3 on a batch of 8: its im2col matrix
	// (23 MB) no longer fits in any cache.
	benchConv(b, Conv2d{InC: 26, OutC: 26, Kernel: 3, Stride: 1, Pad: 1}, 8, 56, 56)
}

func BenchmarkConv3x3Stage2Batch8(b *testing.B) {
	// A branch of features.5.B.conv.3: 52 -> 52 channels at 28x28, batch 8.
	benchConv(b, Conv2d{InC: 52, OutC: 52, Kernel: 3, Stride: 1, Pad: 1}, 8, 28, 28)
}

func BenchmarkConv3x3Stage3Batch8(b *testing.B) {
	// A branch of features.6.B.conv.3: 104 -> 104 channels at 14x14,
	// batch 8, in the m-vector layout the network gives it.
	benchConv(b, Conv2d{InC: 104, OutC: 104, Kernel: 3, Stride: 1, Pad: 1, Columns: 14 * 14}, 8, 14, 14)
}
