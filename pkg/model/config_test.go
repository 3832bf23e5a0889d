package model

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/ops"
)

// The state dicts of the published checkpoints, as listed by PyTorch (key,
// shape, dtype in file order): Holocron's, and timm's for every variant
// (copied from the project's shared reference).
const (
	tsvPath     = "../../testdata/reference/res2net50_26w_4s_state_dict.tsv"
	timmTSVPath = "../../testdata/reference/timm/%s_state_dict.tsv"
)

// readListing returns the "key shape" lines of a state-dict listing, without
// the num_batches_tracked counters.
func readListing(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var want []string
	sc := bufio.NewScanner(f)
	sc.Scan() // header: key, shape, dtype
	for sc.Scan() {
		fields := strings.Split(sc.Text(), "\t")
		if len(fields) != 3 {
			t.Fatalf("bad line %q", sc.Text())
		}
		if !strings.HasSuffix(fields[0], ".num_batches_tracked") {
			want = append(want, fields[0]+" "+fields[1])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return want
}

func TestStateDictMatchesPublishedCheckpoints(t *testing.T) {
	paths := map[string]string{HolocronName: tsvPath}
	for _, name := range PresetNames() {
		if name != HolocronName {
			paths[name] = fmt.Sprintf(timmTSVPath, name)
		}
	}
	for name, path := range paths {
		t.Run(name, func(t *testing.T) {
			want := readListing(t, path)
			cfg, _ := Preset(name)
			var got []string
			for _, p := range cfg.StateDict() {
				got = append(got, p.Name+" "+ops.ShapeString(p.Shape))
			}
			if len(got) != len(want) {
				t.Errorf("%d entries, checkpoint has %d", len(got), len(want))
			}
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Fatalf("entry %d: %q, checkpoint has %q", i, got[i], want[i])
				}
			}
		})
	}
}

// TestPresetParams checks every preset's parameter count, from Summary, with
// the published figures (testdata/reference/FACTS.md, FAMILY.md).
func TestPresetParams(t *testing.T) {
	want := map[string]int64{
		HolocronName:        23_670_610,
		"res2net50_26w_4s":  25_699_120,
		"res2net50_48w_2s":  25_287_304,
		"res2net50_14w_8s":  25_059_816,
		"res2net50_26w_6s":  37_051_448,
		"res2net50_26w_8s":  48_403_776,
		"res2net101_26w_4s": 45_206_688,
		"res2next50":        24_671_464,
		"res2net50d":        25_718_352,
		"res2net101d":       45_225_920,
	}
	if names := PresetNames(); len(names) != len(want) {
		t.Errorf("presets %v, want the %d published models", names, len(want))
	}
	for name, params := range want {
		cfg, ok := Preset(name)
		if !ok {
			t.Errorf("no preset %s", name)
			continue
		}
		var got, fromDict int64
		for _, l := range cfg.Summary(224, 224) {
			got += l.Params
		}
		for _, p := range cfg.StateDict() {
			if !strings.HasSuffix(p.Name, "running_mean") && !strings.HasSuffix(p.Name, "running_var") {
				fromDict += int64(ops.NumElements(p.Shape))
			}
		}
		if got != params || fromDict != params {
			t.Errorf("%s: Summary counts %d parameters, StateDict %d, want %d", name, got, fromDict, params)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, ok := Preset("res2net999"); ok {
		t.Error("Preset accepted an unknown name")
	}
}

func TestSummaryTotals(t *testing.T) {
	// Totals published with the checkpoint (testdata/reference/FACTS.md).
	var params, convMACs, headMACs int64
	for _, l := range Res2Net50().Summary(224, 224) {
		params += l.Params
		switch l.Type {
		case TypeConv:
			convMACs += l.MACs
		case TypeLinear:
			headMACs += l.MACs
		default:
			if l.MACs != 0 {
				t.Errorf("%s (%s): %d MACs counted", l.Name, l.Type, l.MACs)
			}
		}
	}
	if params != 23_670_610 {
		t.Errorf("params = %d, want 23,670,610", params)
	}
	if convMACs != 4_253_118_464 {
		t.Errorf("conv MACs = %d, want 4,253,118,464", convMACs)
	}
	if headMACs != 20_480 {
		t.Errorf("head MACs = %d, want 20,480", headMACs)
	}
}

func TestSummaryShapes(t *testing.T) {
	// Stage outputs for a 224x224 input (testdata/reference/FACTS.md).
	want := map[string]string{
		"features.2":   "64x112x112",
		"features.3":   "64x56x56",
		"features.4.2": "256x56x56",
		"features.5.3": "512x28x28",
		"features.6.5": "1024x14x14",
		"features.7.2": "2048x7x7",
		"pool":         "2048",
		"head":         "10",
		// Inside blocks: the first block of a stage strides its branches and
		// pools its last split; features.4.0 pools at stride 1.
		"features.5.0.conv.0":            "208x56x56",
		"features.5.0.conv.3.conv.2.0":   "52x28x28",
		"features.5.0.conv.3.downsample": "52x28x28",
		"features.4.0.conv.3.downsample": "26x56x56",
		"features.5.0.conv.3":            "208x28x28",
		"features.5.0.downsample.1":      "512x28x28",
	}
	seen := map[string]bool{}
	for _, l := range Res2Net50().Summary(224, 224) {
		if seen[l.Name] {
			t.Errorf("%s listed twice", l.Name)
		}
		seen[l.Name] = true
		if s, ok := want[l.Name]; ok && ops.ShapeString(l.OutShape) != s {
			t.Errorf("%s: output %s, want %s", l.Name, ops.ShapeString(l.OutShape), s)
		}
	}
	for name := range want {
		if !seen[name] {
			t.Errorf("%s not listed", name)
		}
	}
	// Non-first blocks carry the last split over: no pool layer.
	if seen["features.5.1.conv.3.downsample"] {
		t.Error("features.5.1 has an average pool")
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*Config)
		want string // substring of the error; "" for valid
	}{
		{"res2net50", func(*Config) {}, ""},
		{"tiny", func(c *Config) { *c = tinyConfig() }, ""},
		{"no blocks", func(c *Config) { c.Layers[2] = 0 }, "Layers[2] is 0"},
		{"empty splits", func(c *Config) { c.Planes[0] = 2 }, "Planes[0] = 2 with BaseWidth 26 gives splits of 0 channels"},
		{"no scale", func(c *Config) { c.Scale = 0 }, "Scale is 0"},
		{"no classes", func(c *Config) { c.Classes = -1 }, "Classes is -1"},
	}
	for _, tc := range tests {
		cfg := Res2Net50()
		tc.edit(&cfg)
		err := cfg.Validate()
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}
