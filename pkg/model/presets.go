package model

import "slices"

// Res2Net50 returns the configuration of Holocron's Res2Net-50 26w x 4s
// with the 10-class Imagenette head of its published checkpoint, the
// project's default model.
func Res2Net50() Config {
	return Config{
		Layers:       [4]int{3, 4, 6, 3},
		Planes:       [4]int{64, 128, 256, 512},
		StemChannels: 64,
		BaseWidth:    26,
		Scale:        4,
		Cardinality:  1,
		Classes:      10,
		Layout:       LayoutHolocron,
	}
}

// timm returns a timm ImageNet-1k Res2Net: planes 64 to 512, a 64-channel
// stem, 1000 classes, timm's key layout.
func timm(layers [4]int, baseWidth, scale, cardinality int) Config {
	return Config{
		Layers:       layers,
		Planes:       [4]int{64, 128, 256, 512},
		StemChannels: 64,
		BaseWidth:    baseWidth,
		Scale:        scale,
		Cardinality:  cardinality,
		Classes:      1000,
		Layout:       LayoutTimm,
	}
}

var (
	layers50  = [4]int{3, 4, 6, 3}
	layers101 = [4]int{3, 4, 23, 3}
)

// Res2Net50_26w_4s is timm's res2net50_26w_4s (25,699,120 parameters).
func Res2Net50_26w_4s() Config { return timm(layers50, 26, 4, 1) }

// Res2Net50_48w_2s is timm's res2net50_48w_2s (25,287,304 parameters).
func Res2Net50_48w_2s() Config { return timm(layers50, 48, 2, 1) }

// Res2Net50_14w_8s is timm's res2net50_14w_8s (25,059,816 parameters).
func Res2Net50_14w_8s() Config { return timm(layers50, 14, 8, 1) }

// Res2Net50_26w_6s is timm's res2net50_26w_6s (37,051,448 parameters).
func Res2Net50_26w_6s() Config { return timm(layers50, 26, 6, 1) }

// Res2Net50_26w_8s is timm's res2net50_26w_8s (48,403,776 parameters).
func Res2Net50_26w_8s() Config { return timm(layers50, 26, 8, 1) }

// Res2Net101_26w_4s is timm's res2net101_26w_4s (45,206,688 parameters).
func Res2Net101_26w_4s() Config { return timm(layers101, 26, 4, 1) }

// Res2NeXt50 is timm's res2next50: base width 4, scale 4, cardinality 8,
// so 8 groups of 4 channels in stage 1's branch convs (24,671,464
// parameters).
func Res2NeXt50() Config { return timm(layers50, 4, 4, 8) }

// Res2Net50d is timm's res2net50d: the deep stem (32, 32, 64) and the
// average-pool shortcut (25,718,352 parameters).
func Res2Net50d() Config { return deep(timm(layers50, 26, 4, 1)) }

// Res2Net101d is timm's res2net101d: Res2Net101_26w_4s with the deep stem
// and the average-pool shortcut (45,225,920 parameters).
func Res2Net101d() Config { return deep(timm(layers101, 26, 4, 1)) }

// deep gives c ResNet-D's deep stem and average-pool shortcut.
func deep(c Config) Config {
	c.Stem, c.StemWidth, c.Shortcut = StemDeep, 32, ShortcutAvgPool
	return c
}

// HolocronName is the preset name of Res2Net50, the Holocron model.
const HolocronName = "holocron_res2net50_26w_4s"

// presets maps each preset name (timm's model names, and HolocronName) to
// its configuration.
var presets = map[string]func() Config{
	HolocronName:        Res2Net50,
	"res2net50_26w_4s":  Res2Net50_26w_4s,
	"res2net50_48w_2s":  Res2Net50_48w_2s,
	"res2net50_14w_8s":  Res2Net50_14w_8s,
	"res2net50_26w_6s":  Res2Net50_26w_6s,
	"res2net50_26w_8s":  Res2Net50_26w_8s,
	"res2net101_26w_4s": Res2Net101_26w_4s,
	"res2next50":        Res2NeXt50,
	"res2net50d":        Res2Net50d,
	"res2net101d":       Res2Net101d,
}

// Preset returns the configuration named name (see PresetNames) and
// whether there is one.
func Preset(name string) (Config, bool) {
	f, ok := presets[name]
	if !ok {
		return Config{}, false
	}
	return f(), true
}

// PresetNames lists the names Preset knows, sorted.
func PresetNames() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
