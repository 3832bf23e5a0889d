package model

import (
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/ops"
)

// shapesOf returns zero tensors with the shapes cfg expects.
func shapesOf(cfg Config) map[string]*ops.Tensor {
	out := map[string]*ops.Tensor{}
	for _, p := range cfg.StateDict() {
		out[p.Name] = ops.New(p.Shape...)
	}
	return out
}

func TestInfer(t *testing.T) {
	tiny := tinyConfig()
	tiny.Classes = 7 // not the default, to see it read from head.weight
	cases := map[string]Config{"tiny": tiny}
	for _, name := range PresetNames() {
		cases[name], _ = Preset(name)
	}
	for _, tc := range tinyKinds() {
		cases["tiny "+tc.name] = tc.cfg
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := Infer(shapesOf(want))
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("Infer = %+v, want %+v", got, want)
			}
		})
	}
}

func TestInferErrors(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		breakIt func(map[string]*ops.Tensor)
		want    string
	}{
		{"no stem", Res2Net50(), func(m map[string]*ops.Tensor) { delete(m, "features.0.weight") }, "no Res2Net stem"},
		{"missing head", Res2Net50(), func(m map[string]*ops.Tensor) { delete(m, "head.weight") }, "missing head.weight"},
		{"scalar branch", Res2Net50(), func(m map[string]*ops.Tensor) { m["features.5.0.conv.3.conv.0.0.weight"] = ops.New() }, "want 4 dimensions"},
		{"no base width", Res2Net50(), func(m map[string]*ops.Tensor) { m["features.5.0.conv.3.conv.0.0.weight"] = ops.New(1, 1, 3, 3) }, "no base width"},
		{"hostile index", Res2Net50_26w_4s(), func(m map[string]*ops.Tensor) { m["layer2.99999999.conv1.weight"] = ops.New(1) }, "beyond"},
		{"no stage", Res2Net50_26w_4s(), func(m map[string]*ops.Tensor) {
			for k := range m {
				if strings.HasPrefix(k, "layer3.") {
					delete(m, k)
				}
			}
		}, "no blocks in stage 3"},
		{"lost branch", Res2Net50_26w_4s(), func(m map[string]*ops.Tensor) {
			for k := range m {
				if strings.Contains(k, ".convs.2.") {
					delete(m, k)
				}
			}
		}, "2 branch convs for scale 4"},
		{"groups", Res2NeXt50(), func(m map[string]*ops.Tensor) { m["layer1.0.convs.0.weight"] = ops.New(32, 5, 3, 3) }, "fits no scale or cardinality"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := shapesOf(tc.cfg)
			tc.breakIt(m)
			if _, err := Infer(m); err == nil || !strings.Contains(err.Error(), "infer config") || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Infer = %v, want an infer config error mentioning %q", err, tc.want)
			}
		})
	}
}
