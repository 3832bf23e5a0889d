package ops_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/res2net/res2net/internal/npy"
	"github.com/res2net/res2net/pkg/ops"
)

// opsFixtures is where scripts/make_fixtures.py writes one PyTorch case per
// operator, described by manifest.json.
const opsFixtures = "../../testdata/ops"

type opCase struct {
	Op    string `json:"op"`
	Attrs struct {
		Stride          int   `json:"stride"`
		Padding         int   `json:"padding"`
		Kernel          int   `json:"kernel"`
		Groups          int   `json:"groups"`
		CeilMode        bool  `json:"ceil_mode"`
		CountIncludePad *bool `json:"count_include_pad"` // PyTorch's default, true, when absent
	} `json:"attrs"`
	Tensors map[string]struct {
		File string `json:"file"`
	} `json:"tensors"`
}

// TestOpsMatchPyTorch runs the optimised operators on every PyTorch case.
func TestOpsMatchPyTorch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(opsFixtures, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cases map[string]opCase
	if err := json.Unmarshal(raw, &cases); err != nil {
		t.Fatalf("manifest.json: %v", err)
	}
	seen := map[string]bool{}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tensor := func(role string) *ops.Tensor {
				f, ok := c.Tensors[role]
				if !ok {
					return nil
				}
				x, err := npy.Read(filepath.Join(opsFixtures, f.File))
				if err != nil {
					t.Fatal(err)
				}
				return x
			}
			x, want := tensor("input"), tensor("output")
			got := ops.New(want.Shape...)
			seen[c.Op] = true
			switch c.Op {
			case "conv2d":
				weight := tensor("weight")
				groups := max(c.Attrs.Groups, 1)
				conv := ops.Conv2d{InC: weight.Shape[1] * groups, OutC: weight.Shape[0], Kernel: weight.Shape[2],
					Stride: c.Attrs.Stride, Pad: c.Attrs.Padding, Groups: groups, Weight: weight.Data}
				if b := tensor("bias"); b != nil {
					conv.Bias = b.Data
				}
				h, w := x.Shape[2], x.Shape[3]
				col := make([]float32, conv.ColSize(1, h, w))
				perIn, perOut := ops.NumElements(x.Shape[1:]), ops.NumElements(want.Shape[1:])
				for i := range x.Shape[0] {
					conv.Forward(got.Data[i*perOut:], x.Data[i*perIn:], 1, h, w, nil, ops.Exec{Col: col})
				}
			case "batchnorm_eval":
				// Fold into an identity 1x1 conv: the model's only use of BatchNorm.
				ch := x.Shape[1]
				conv := ops.Conv2d{InC: ch, OutC: ch, Kernel: 1, Stride: 1, Weight: make([]float32, ch*ch)}
				for i := range ch {
					conv.Weight[i*ch+i] = 1
				}
				ops.BatchNorm{Weight: tensor("weight").Data, Bias: tensor("bias").Data,
					Mean: tensor("running_mean").Data, Var: tensor("running_var").Data, Eps: 1e-5}.FoldInto(&conv)
				per := ops.NumElements(x.Shape[1:])
				for i := range x.Shape[0] {
					conv.Forward(got.Data[i*per:], x.Data[i*per:], 1, x.Shape[2], x.Shape[3], nil, ops.Exec{})
				}
			case "relu":
				copy(got.Data, x.Data)
				ops.ReLURef(got.Data)
			case "maxpool2d", "avgpool2d":
				p := ops.Pool2d{Kernel: c.Attrs.Kernel, Stride: c.Attrs.Stride, Pad: c.Attrs.Padding,
					CeilMode: c.Attrs.CeilMode, ExcludePad: c.Attrs.CountIncludePad != nil && !*c.Attrs.CountIncludePad}
				pool := p.Max
				if c.Op == "avgpool2d" {
					pool = p.Avg
				}
				perIn, perOut := ops.NumElements(x.Shape[1:]), ops.NumElements(want.Shape[1:])
				for i := range x.Shape[0] {
					pool(got.Data[i*perOut:], x.Data[i*perIn:], x.Shape[1], x.Shape[2], x.Shape[3])
				}
			case "adaptive_avgpool2d_1":
				per := ops.NumElements(x.Shape[1:])
				for i := range x.Shape[0] {
					ops.GlobalAvgPool(got.Data[i*x.Shape[1]:], x.Data[i*per:], x.Shape[1], x.Shape[2]*x.Shape[3])
				}
			case "linear":
				weight := tensor("weight")
				l := ops.Linear{In: weight.Shape[1], Out: weight.Shape[0], Weight: weight.Data, Bias: tensor("bias").Data}
				for i := range x.Shape[0] {
					l.Forward(got.Data[i*l.Out:], x.Data[i*l.In:])
				}
			case "softmax":
				got = ops.Softmax(x)
			default:
				t.Fatalf("unknown op %q", c.Op)
			}
			if !ops.SameShape(got.Shape, want.Shape) {
				t.Fatalf("shape %s, want %s", ops.ShapeString(got.Shape), ops.ShapeString(want.Shape))
			}
			ops.AssertClose(t, c.Op, got.Data, want.Data, 1e-5)
		})
	}
	for _, op := range []string{"conv2d", "batchnorm_eval", "maxpool2d", "avgpool2d", "linear", "softmax"} {
		if !seen[op] {
			t.Errorf("no fixture for %s", op)
		}
	}
}
