package cam

import "image/color"

// turboLevels is the size of the colour table (turbo_table.go): one entry
// per 8-bit level, finer than any display shows. Turbo keeps a smooth
// lightness ramp from dark blue through green to dark red, so that both
// cold and hot regions stay visible over a photo.
const turboLevels = 256

// Turbo maps v in [0, 1] (clamped; NaN counts as 0) to the Turbo colour map.
func Turbo(v float32) color.NRGBA {
	i := 0
	switch {
	case v >= 1:
		i = turboLevels - 1
	case v > 0:
		i = int(v*(turboLevels-1) + 0.5)
	}
	c := turboTable[i]
	return color.NRGBA{c[0], c[1], c[2], 255}
}
