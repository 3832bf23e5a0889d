package cam

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"math"

	"github.com/disintegration/imaging"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Window is where the network's input lies on the source photo, in source
// pixels: the crop window of the evaluation transform mapped back through
// the resize. It may extend past the photo when the crop padded it.
type Window struct {
	X, Y, W, H float64
}

// Upsample maps an h x w grid onto a photo of width x height pixels: each
// pixel whose centre lies inside win gets the grid bilinearly interpolated
// at that point (grid values sit at the centres of their cells, as in
// PyTorch's interpolate with align_corners=False, and are held constant
// beyond the outer centres); pixels outside win get NaN, because the
// network never saw them.
func Upsample(grid []float32, h, w int, win Window, width, height int) ([]float32, error) {
	if h < 1 || w < 1 || len(grid) != h*w {
		return nil, fmt.Errorf("cam: %d values for a %d x %d grid", len(grid), h, w)
	}
	if !(win.W > 0 && win.H > 0) {
		return nil, fmt.Errorf("cam: empty window %+v", win)
	}
	if width < 0 || height < 0 {
		return nil, fmt.Errorf("cam: image of %d x %d", width, height)
	}
	// Interpolation positions and weights per column and per row.
	xs, xok := axis(width, win.X, win.W, w)
	ys, yok := axis(height, win.Y, win.H, h)
	out := make([]float32, width*height)
	nan := float32(math.NaN())
	for py := range height {
		row := out[py*width : (py+1)*width]
		if !yok[py] {
			for i := range row {
				row[i] = nan
			}
			continue
		}
		y := ys[py]
		for px := range width {
			if !xok[px] {
				row[px] = nan
				continue
			}
			x := xs[px]
			top := float64(grid[y.i0*w+x.i0])*(1-x.f) + float64(grid[y.i0*w+x.i1])*x.f
			bot := float64(grid[y.i1*w+x.i0])*(1-x.f) + float64(grid[y.i1*w+x.i1])*x.f
			row[px] = float32(top*(1-y.f) + bot*y.f)
		}
	}
	return out, nil
}

// tap is a bilinear interpolation position along one axis: between cells
// i0 and i1 with weight f on i1.
type tap struct {
	i0, i1 int
	f      float64
}

// axis computes the taps of n pixels against cells grid cells spanning
// [start, start+length), and which pixels fall inside.
func axis(n int, start, length float64, cells int) ([]tap, []bool) {
	taps, inside := make([]tap, n), make([]bool, n)
	for p := range n {
		u := (float64(p) + 0.5 - start) / length
		if u < 0 || u >= 1 {
			continue
		}
		inside[p] = true
		g := u*float64(cells) - 0.5
		g = min(max(g, 0), float64(cells-1))
		i0 := int(g)
		taps[p] = tap{i0: i0, i1: min(i0+1, cells-1), f: g - float64(i0)}
	}
	return taps, inside
}

// Overlay options.
const (
	// DefaultOpacity is how much of the colour map covers the photo.
	DefaultOpacity = 0.5
	// outsideDim darkens the parts of the photo outside the network's
	// input, so the eye sees what the map covers.
	outsideDim = 0.45
	// captionBase is the photo size (shorter side, pixels) at which the
	// caption is drawn at the font's own size; larger photos scale it up
	// so that it stays readable.
	captionBase = 320
)

// Overlay draws heat (one value in [0, 1] per pixel of photo, NaN where the
// network saw nothing, as Upsample returns after Normalize) over photo with
// the Turbo colour map at the given opacity, dims the pixels with no heat,
// and writes caption (for example the label and its probability) in the
// top-left corner when it is not empty.
func Overlay(photo image.Image, heat []float32, opacity float64, caption string) (*image.NRGBA, error) {
	out := toOpaque(photo)
	b := out.Bounds()
	width, height := b.Dx(), b.Dy()
	if len(heat) != width*height {
		return nil, fmt.Errorf("cam: %d heat values for a %d x %d photo", len(heat), width, height)
	}
	if !(opacity >= 0 && opacity <= 1) {
		return nil, fmt.Errorf("cam: opacity %v outside [0, 1]", opacity)
	}
	for y := range height {
		row := out.Pix[y*out.Stride : y*out.Stride+4*width]
		for x := range width {
			px := row[4*x : 4*x+3]
			v := heat[y*width+x]
			if v != v { // NaN: outside the network's input
				for c := range px {
					px[c] = uint8(float64(px[c])*outsideDim + 0.5)
				}
				continue
			}
			col := Turbo(v)
			for c, m := range [3]uint8{col.R, col.G, col.B} {
				px[c] = uint8(float64(px[c])*(1-opacity) + float64(m)*opacity + 0.5)
			}
		}
	}
	if caption != "" {
		drawCaption(out, caption)
	}
	return out, nil
}

// drawCaption writes text in white on a translucent dark box in the
// top-left corner of img, scaled with the photo.
func drawCaption(img *image.NRGBA, text string) {
	face := basicfont.Face7x13
	const pad = 3
	w := font.MeasureString(face, text).Ceil() + 2*pad
	h := face.Metrics().Height.Ceil() + 2*pad
	box := image.NewNRGBA(image.Rect(0, 0, w, h))
	draw.Draw(box, box.Bounds(), image.NewUniform(color.NRGBA{0, 0, 0, 170}), image.Point{}, draw.Src)
	d := font.Drawer{Dst: box, Src: image.White, Face: face,
		Dot: fixed.P(pad, pad+face.Metrics().Ascent.Ceil())}
	d.DrawString(text)
	b := img.Bounds()
	if scale := min(b.Dx(), b.Dy()) / captionBase; scale > 1 {
		box = imaging.Resize(box, w*scale, h*scale, imaging.NearestNeighbor)
	}
	margin := max(2, min(b.Dx(), b.Dy())/100)
	draw.Draw(img, box.Bounds().Add(b.Min).Add(image.Pt(margin, margin)), box, image.Point{}, draw.Over)
}

// toOpaque copies photo into a new NRGBA image with full alpha: the map
// is drawn over the colours, and a PNG with holes would hide it.
func toOpaque(photo image.Image) *image.NRGBA {
	out := imaging.Clone(photo)
	for i := 3; i < len(out.Pix); i += 4 {
		out.Pix[i] = 255
	}
	return out
}
