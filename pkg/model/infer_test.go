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

func TestInferConfig(t *testing.T) {
	tiny := tinyConfig()
	tiny.Classes = 7 // not the default, to see it read from head.weight
	for name, want := range map[string]Config{"res2net50": Res2Net50(), "tiny": tiny} {
		t.Run(name, func(t *testing.T) {
			got, err := InferConfig(shapesOf(want))
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("InferConfig = %+v, want %+v", got, want)
			}
		})
	}
}

func TestInferConfigErrors(t *testing.T) {
	tests := map[string]func(map[string]*ops.Tensor){
		"missing stem":  func(m map[string]*ops.Tensor) { delete(m, "features.0.weight") },
		"missing head":  func(m map[string]*ops.Tensor) { delete(m, "head.weight") },
		"scalar branch": func(m map[string]*ops.Tensor) { m["features.5.0.conv.3.conv.0.0.weight"] = ops.New() },
		"no base width": func(m map[string]*ops.Tensor) { m["features.5.0.conv.3.conv.0.0.weight"] = ops.New(1, 1, 3, 3) },
	}
	for name, breakIt := range tests {
		t.Run(name, func(t *testing.T) {
			m := shapesOf(Res2Net50())
			breakIt(m)
			if _, err := InferConfig(m); err == nil || !strings.Contains(err.Error(), "infer config") {
				t.Errorf("InferConfig = %v, want an infer config error", err)
			}
		})
	}
}
