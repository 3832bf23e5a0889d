package preprocess

import (
	"image"
	"math"

	"github.com/res2net/res2net/pkg/ops"
)

// Transform applies torchvision's evaluation transform to img: Resize
// (shorter side to opts.Resize, Pillow's antialiased bilinear filter),
// CenterCrop(opts.Crop) with zero padding when the image is smaller than the
// crop, ToTensor (/255) and Normalize(opts.Mean, opts.Std), all in float32
// as torchvision computes them. It returns a 3 x Crop x Crop tensor (CHW).
// Resize <= 0 skips the resize and Crop <= 0 the crop. Images other than
// the *image.NRGBA that Decode returns are first converted to RGB as
// Pillow's convert("RGB") would; alpha is ignored.
func Transform(img image.Image, opts Options) *ops.Tensor {
	src := rasterOf(img)
	outW, outH := src.w, src.h
	if opts.Resize > 0 && src.w > 0 && src.h > 0 {
		outW, outH = resizedSize(src.w, src.h, opts.Resize)
	}
	cropW, cropH := outW, outH
	if opts.Crop > 0 {
		cropW, cropH = opts.Crop, opts.Crop
	}
	left, top := cropOffset(outW, cropW), cropOffset(outH, cropH)
	// The part of the resized image that lands inside the crop window.
	x0, x1 := max(left, 0), min(left+cropW, outW)
	y0, y1 := max(top, 0), min(top+cropH, outH)

	table := normTable(opts)
	t := ops.New(3, cropH, cropW)
	plane := cropW * cropH
	for c := 0; c < 3; c++ {
		pad := table[c][0]
		for i := range t.Data[c*plane : (c+1)*plane] {
			t.Data[c*plane+i] = pad
		}
	}
	if x0 >= x1 || y0 >= y1 {
		return t
	}
	region := resizeRegion(src, outW, outH, x0, y0, x1, y1)
	for y := 0; y < region.h; y++ {
		row := region.pix[y*region.stride:]
		base := (y+y0-top)*cropW + x0 - left
		for x := 0; x < region.w; x++ {
			t.Data[base+x] = table[0][row[3*x]]
			t.Data[plane+base+x] = table[1][row[3*x+1]]
			t.Data[2*plane+base+x] = table[2][row[3*x+2]]
		}
	}
	return t
}

// resizedSize is torchvision's output size for Resize(size) with a single
// int: the shorter side becomes size and the longer int(size*long/short),
// truncated.
func resizedSize(w, h, size int) (int, int) {
	if w <= h {
		return size, int(float64(size*h) / float64(w))
	}
	return int(float64(size*w) / float64(h)), size
}

// cropOffset is the position of a crop window of length crop centred on a
// side of length size, as torchvision's center_crop computes it: Python's
// round (halves to even) of (size-crop)/2, or, when the side is shorter
// than the crop and torchvision first pads it with (crop-size)//2 zeros in
// front, minus that padding.
func cropOffset(size, crop int) int {
	if crop > size {
		return -((crop - size) / 2)
	}
	return int(math.RoundToEven(float64(size-crop) / 2))
}

// normTable maps each byte value to its normalised float32 per channel,
// computed in the order torchvision uses: v/255, then (x-mean)/std.
func normTable(opts Options) *[3][256]float32 {
	var t [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			x := float32(v) / 255
			t[c][v] = (x - opts.Mean[c]) / opts.Std[c]
		}
	}
	return &t
}

// rasterOf views an NRGBA image's pixels in place, or converts any other
// image to packed RGB.
func rasterOf(img image.Image) *rgbImage {
	if m, ok := img.(*image.NRGBA); ok {
		b := m.Rect
		return &rgbImage{w: b.Dx(), h: b.Dy(), step: 4, stride: m.Stride, pix: m.Pix[m.PixOffset(b.Min.X, b.Min.Y):]}
	}
	return rasterOf(toNRGBA(img))
}
