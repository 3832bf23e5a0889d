package cam

import (
	"image"
	"image/color"
	"math"
	"strings"
	"testing"
)

func TestGrid(t *testing.T) {
	// Two 2x3 channels; the map is 2*F0 - 0.5*F1.
	maps := []float32{
		1, 2, 3, 4, 5, 6,
		-2, 0, 2, 4, 6, 8,
	}
	got, err := Grid(maps, 2, 2, 3, []float32{2, -0.5})
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{3, 4, 5, 6, 7, 8}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Grid = %v, want %v", got, want)
		}
	}
}

func TestGridErrors(t *testing.T) {
	tests := []struct {
		name       string
		maps       []float32
		c, h, w    int
		weights    []float32
		wantSubstr string
	}{
		{"short maps", make([]float32, 5), 1, 2, 3, []float32{1}, "need 6 values"},
		{"weights", make([]float32, 6), 1, 2, 3, []float32{1, 2}, "2 class weights"},
		{"empty", nil, 0, 2, 3, nil, "feature maps of 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Grid(tt.maps, tt.c, tt.h, tt.w, tt.weights)
			if err == nil || !strings.Contains(err.Error(), tt.wantSubstr) {
				t.Fatalf("error %v, want one containing %q", err, tt.wantSubstr)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	got := Normalize([]float32{-1, 0, 3})
	want := []float32{0, 0.25, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("Normalize = %v, want %v", got, want)
		}
	}
	for _, v := range Normalize([]float32{2, 2}) {
		if v != 0 {
			t.Fatalf("constant grid normalised to %v, want zeros", v)
		}
	}
}

func TestUpsample(t *testing.T) {
	// A 1x2 grid over a 4-pixel-wide window starting one pixel into a
	// 6x1 photo: pixel centres 1.5..4.5 fall inside at grid positions
	// -0.25, 0.25, 0.75, 1.25 (clamped to the outer cells).
	got, err := Upsample([]float32{0, 8}, 1, 2, Window{X: 1, Y: 0, W: 4, H: 1}, 6, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []float32{float32(math.NaN()), 0, 2, 6, 8, float32(math.NaN())}
	for i := range want {
		if math.IsNaN(float64(want[i])) != math.IsNaN(float64(got[i])) || (!math.IsNaN(float64(want[i])) && got[i] != want[i]) {
			t.Fatalf("Upsample = %v, want %v", got, want)
		}
	}
}

func TestUpsampleBilinear(t *testing.T) {
	// A 2x2 grid over a 4x4 photo: the centre pixels mix all four cells.
	grid := []float32{0, 4, 8, 12}
	got, err := Upsample(grid, 2, 2, Window{W: 4, H: 4}, 4, 4)
	if err != nil {
		t.Fatal(err)
	}
	// Pixel (1, 1) sits at grid position (0.25, 0.25).
	want := float32(0*0.75*0.75 + 4*0.25*0.75 + 8*0.75*0.25 + 12*0.25*0.25)
	if got[1*4+1] != want {
		t.Fatalf("pixel (1,1) = %v, want %v", got[5], want)
	}
	if got[0] != 0 || got[15] != 12 {
		t.Fatalf("corners %v, %v; want the corner cells 0 and 12", got[0], got[15])
	}
}

func TestUpsampleErrors(t *testing.T) {
	if _, err := Upsample([]float32{1, 2, 3}, 2, 2, Window{W: 1, H: 1}, 4, 4); err == nil {
		t.Fatal("no error for a short grid")
	}
	if _, err := Upsample([]float32{1}, 1, 1, Window{W: 0, H: 1}, 4, 4); err == nil {
		t.Fatal("no error for an empty window")
	}
}

func TestTurbo(t *testing.T) {
	lo, mid, hi := Turbo(0), Turbo(0.5), Turbo(1)
	// Dark blue, then green, then dark red.
	if !(lo.B > lo.R && lo.B > lo.G) {
		t.Errorf("Turbo(0) = %v, want blue dominant", lo)
	}
	if !(mid.G > mid.R && mid.G > mid.B) {
		t.Errorf("Turbo(0.5) = %v, want green dominant", mid)
	}
	if !(hi.R > hi.G && hi.R > hi.B) {
		t.Errorf("Turbo(1) = %v, want red dominant", hi)
	}
	if Turbo(-3) != lo || Turbo(7) != hi || Turbo(float32(math.NaN())) != lo {
		t.Error("Turbo does not clamp its input")
	}
	// Smooth: neighbouring levels differ by a few steps at most.
	for i := 1; i < turboLevels; i++ {
		a, b := turboTable[i-1], turboTable[i]
		for c := range a {
			d := int(a[c]) - int(b[c])
			if d < -8 || d > 8 {
				t.Fatalf("levels %d and %d jump: %v, %v", i-1, i, a, b)
			}
		}
	}
}

func TestOverlay(t *testing.T) {
	const w, h = 400, 360
	photo := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range photo.Pix {
		photo.Pix[i] = 200
	}
	heat := make([]float32, w*h)
	for i := range heat {
		heat[i] = 1
	}
	heat[w*h-1] = float32(math.NaN())
	out, err := Overlay(photo, heat, 1, "cat 93.1%")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := out.NRGBAAt(w/2, h/2), Turbo(1); got != want {
		t.Errorf("fully opaque heat 1 drew %v, want %v", got, want)
	}
	if got := out.NRGBAAt(w-1, h-1); got.R != 90 || got.A != 255 {
		t.Errorf("pixel outside the window = %v, want dimmed to 90", got)
	}
	// The caption puts white pixels in the top-left corner.
	white := 0
	for y := range 40 {
		for x := range 120 {
			if out.NRGBAAt(x, y) == (color.NRGBA{255, 255, 255, 255}) {
				white++
			}
		}
	}
	if white == 0 {
		t.Error("no caption text in the corner")
	}
	if photo.Pix[0] != 200 {
		t.Error("Overlay changed its input")
	}
	if _, err := Overlay(photo, heat[:10], 0.5, ""); err == nil {
		t.Error("no error for a heat map of the wrong size")
	}
	if _, err := Overlay(photo, heat, 1.5, ""); err == nil {
		t.Error("no error for opacity 1.5")
	}
}
