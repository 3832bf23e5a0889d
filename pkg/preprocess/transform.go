package preprocess

import (
	"errors"
	"fmt"
	"image"
	"math"

	"github.com/res2net/res2net/pkg/ops"
)

// Interpolation names the filter a Transform resizes with.
type Interpolation string

// Bilinear is Pillow's antialiased bilinear (triangle) filter, torchvision's
// InterpolationMode.BILINEAR, the only one supported.
const Bilinear Interpolation = "bilinear"

// Limits on a Transform's sizes, so that a flag value cannot ask for an
// absurd tensor.
const (
	maxResize = 1 << 16
	maxCrop   = 1 << 13
)

// ImageNet's per-channel statistics, which torchvision's and timm's
// evaluation transforms normalise with.
var (
	ImageNetMean = [3]float32{0.485, 0.456, 0.406}
	ImageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Transform is an evaluation transform as data: torchvision's
// Resize(Resize, Interpolation), CenterCrop(Crop), ToTensor and
// Normalize(Mean, Std).
type Transform struct {
	// Resize is the length the shorter side is resized to (0: no resize);
	// the longer side becomes int(Resize*long/short), as torchvision does.
	Resize int
	// Crop is the side of the square centre crop (0: no crop). A crop
	// larger than the resized image is padded with zeros (before Normalize).
	Crop int
	// Mean and Std normalise each RGB channel after scaling to [0, 1]:
	// (x - Mean) / Std. Std must not be zero.
	Mean, Std [3]float32
	// Interpolation is the resize filter; "" means Bilinear.
	Interpolation Interpolation
}

// HolocronTransform is the evaluation transform of the Holocron
// checkpoints: Resize(232), CenterCrop(224), ImageNet mean and std.
func HolocronTransform() Transform {
	return Transform{Resize: 232, Crop: 224, Mean: ImageNetMean, Std: ImageNetStd, Interpolation: Bilinear}
}

// TimmTransform is timm's evaluation transform for a model with input size
// crop and crop_pct cropPct (resolve_data_config + create_transform):
// the shorter side resized to floor(crop/cropPct), bilinear, CenterCrop(crop),
// ImageNet mean and std. TimmTransform(224, 0.875) resizes to 256.
func TimmTransform(crop int, cropPct float64) Transform {
	return Transform{Resize: int(math.Floor(float64(crop) / cropPct)), Crop: crop,
		Mean: ImageNetMean, Std: ImageNetStd, Interpolation: Bilinear}
}

// Validate reports a transform that cannot be applied.
func (t Transform) Validate() error {
	switch {
	case t.Resize < 0 || t.Resize > maxResize:
		return fmt.Errorf("resize %d is outside [0, %d]", t.Resize, maxResize)
	case t.Crop < 0 || t.Crop > maxCrop:
		return fmt.Errorf("crop %d is outside [0, %d]", t.Crop, maxCrop)
	case t.Interpolation != "" && t.Interpolation != Bilinear:
		return fmt.Errorf("interpolation %q is not supported (only %q)", t.Interpolation, Bilinear)
	}
	for c, s := range t.Std {
		if s == 0 || math.IsNaN(float64(s)) || math.IsNaN(float64(t.Mean[c])) {
			return errors.New("normalisation needs a non-zero std and finite mean for every channel")
		}
	}
	return nil
}

// Geometry is where a transform's output lies in its source image.
type Geometry struct {
	SrcW, SrcH         int // source size
	ResizedW, ResizedH int // size after Resize
	// Left and Top are the crop window's offset in the resized image,
	// negative where torchvision pads a side shorter than the crop.
	Left, Top    int
	CropW, CropH int // output size
}

// Geometry returns the resize size and crop offsets the transform uses on
// a w x h source image.
func (t Transform) Geometry(w, h int) Geometry {
	g := Geometry{SrcW: w, SrcH: h, ResizedW: w, ResizedH: h}
	if t.Resize > 0 && w > 0 && h > 0 {
		g.ResizedW, g.ResizedH = resizedSize(w, h, t.Resize)
	}
	g.CropW, g.CropH = g.ResizedW, g.ResizedH
	if t.Crop > 0 {
		g.CropW, g.CropH = t.Crop, t.Crop
	}
	g.Left, g.Top = cropOffset(g.ResizedW, g.CropW), cropOffset(g.ResizedH, g.CropH)
	return g
}

// ToSource maps a point of the output (continuous coordinates: pixel
// (i, j) spans [i, i+1) x [j, j+1)) to the source image's coordinates.
func (g Geometry) ToSource(x, y float64) (float64, float64) {
	return (x + float64(g.Left)) * float64(g.SrcW) / float64(g.ResizedW),
		(y + float64(g.Top)) * float64(g.SrcH) / float64(g.ResizedH)
}

// Apply applies the transform to img, all in float32 as torchvision
// computes it, and returns a 3 x CropH x CropW tensor (CHW). Images other
// than the *image.NRGBA that Decode returns are first converted to RGB as
// Pillow's convert("RGB") would; alpha is ignored. The transform must be
// valid (see Validate). Its working memory (at most the crop's width, or
// the resized width without a crop, x the image's height x 3 bytes) is
// not limited: the image is already in memory.
func (t Transform) Apply(img image.Image) *ops.Tensor {
	b := img.Bounds()
	s, _ := newTransformSink(t, b.Dx(), b.Dy(), 1, math.MaxInt64) // no limit: no error

	rgbRows(img, s)
	return s.finish()
}

// tensorSink is the output tensor of a transform, padded, with the part of
// the resized image that lands inside the crop window: [x0,x1) x [y0,y1)
// in resized coordinates.
type tensorSink struct {
	t              *ops.Tensor
	g              Geometry
	table          *[3][256]float32
	x0, y0, x1, y1 int
}

func newTensorSink(tr Transform, g Geometry) *tensorSink {
	s := &tensorSink{t: ops.New(3, g.CropH, g.CropW), g: g, table: normTable(tr),
		x0: max(g.Left, 0), x1: min(g.Left+g.CropW, g.ResizedW),
		y0: max(g.Top, 0), y1: min(g.Top+g.CropH, g.ResizedH)}
	plane := g.CropW * g.CropH
	for c := 0; c < 3; c++ {
		pad := s.table[c][0]
		for i := range s.t.Data[c*plane : (c+1)*plane] {
			s.t.Data[c*plane+i] = pad
		}
	}
	return s
}

// empty reports whether no resized pixel lands in the crop.
func (s *tensorSink) empty() bool { return s.x0 >= s.x1 || s.y0 >= s.y1 }

// fill normalises the resized region into the tensor.
func (s *tensorSink) fill(region *rgbImage) {
	plane := s.g.CropW * s.g.CropH
	for y := 0; y < region.h; y++ {
		row := region.pix[y*region.stride:]
		base := (y+s.y0-s.g.Top)*s.g.CropW + s.x0 - s.g.Left
		for x := 0; x < region.w; x++ {
			s.t.Data[base+x] = s.table[0][row[3*x]]
			s.t.Data[plane+base+x] = s.table[1][row[3*x+1]]
			s.t.Data[2*plane+base+x] = s.table[2][row[3*x+2]]
		}
	}
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
func normTable(opts Transform) *[3][256]float32 {
	var t [3][256]float32
	for c := 0; c < 3; c++ {
		for v := 0; v < 256; v++ {
			x := float32(v) / 255
			t[c][v] = (x - opts.Mean[c]) / opts.Std[c]
		}
	}
	return &t
}
