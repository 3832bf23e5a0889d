package classify

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/res2net/res2net/internal/npy"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/ops/gemm"
	"github.com/res2net/res2net/pkg/preprocess"
)

const (
	tinyWeights = "../../testdata/tiny/tiny_legacy.pth"
	photosDir   = "../../testdata/photos"
)

var tinyLabels = []string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}

func loadTiny(t *testing.T) *Classifier {
	t.Helper()
	opts := Options{Transform: preprocess.DefaultOptions(), Labels: tinyLabels}
	opts.Transform.Orient = false
	c, err := Load(tinyWeights, opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// photoLogits lists the test photos with PyTorch's logits for them.
func photoLogits(t *testing.T) (files []string, logits [][]float32) {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(photosDir, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Files []struct{ File, Logits string }
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Files {
		l, err := npy.Read(filepath.Join(photosDir, f.Logits))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f.File)
		logits = append(logits, l.Data)
	}
	return files, logits
}

// TestClassifyMatchesPyTorch decodes every test photo and classifies them
// in one batch: logits within tolerance of PyTorch's, top-5 in its order,
// probabilities summing to 1.
func TestClassifyMatchesPyTorch(t *testing.T) {
	c := loadTiny(t)
	files, want := photoLogits(t)
	preds, err := c.NewRunner(2).Classify(photoBatch(t, c), 10)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range files {
		order := ops.TopK(want[i], 10)
		tol := 1e-4 * math.Max(1, math.Abs(float64(want[i][order[0]])))
		sum := 0.0
		for k, p := range preds[i] {
			sum += float64(p.Probability)
			if k < 5 && p.Index != order[k] {
				t.Errorf("%s: rank %d is class %d, PyTorch says %d", f, k+1, p.Index, order[k])
			}
			if d := math.Abs(float64(p.Logit) - float64(want[i][p.Index])); d > tol {
				t.Errorf("%s: logit of class %d off by %.3g > %.3g", f, p.Index, d, tol)
			}
			if p.Label != tinyLabels[p.Index] || p.Rank != k+1 {
				t.Errorf("%s: prediction %+v", f, p)
			}
		}
		if len(preds[i]) != 10 || math.Abs(sum-1) > 1e-5 {
			t.Errorf("%s: %d predictions summing to %v", f, len(preds[i]), sum)
		}
	}
}

// TestRunnersShareOneClassifier runs one Classifier from several goroutines,
// each with its own Runner (under -race in CI): every answer equals a lone
// run's.
func TestRunnersShareOneClassifier(t *testing.T) {
	c := loadTiny(t)
	var images []*ops.Tensor
	for _, f := range []string{"coffee.png", "rocket.lossy.webp", "chelsea.gif"} {
		x, err := c.DecodeFile(filepath.Join(photosDir, f))
		if err != nil {
			t.Fatal(err)
		}
		images = append(images, x)
	}
	want, err := c.NewRunner(1).Logits(images)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]string, 6)
	for g := range errs {
		wg.Go(func() {
			r := c.NewRunner(1 + g%2)
			for range 3 {
				got, err := r.Logits(images[g%2:])
				if err != nil {
					errs[g] = err.Error()
					return
				}
				for i, v := range got.Data {
					if v != want.Data[len(want.Data)-len(got.Data)+i] {
						errs[g] = "logits differ from a lone run's"
						return
					}
				}
			}
		})
	}
	wg.Wait()
	for g, e := range errs {
		if e != "" {
			t.Errorf("goroutine %d: %s", g, e)
		}
	}
}

func TestLoadLabels(t *testing.T) {
	tests := []struct {
		name     string
		labels   []string
		optional bool
		first    string
		err      string
	}{
		{"none", nil, false, "class 0", ""},
		{"fitting", tinyLabels, false, "a", ""},
		{"wrong count", []string{"x", "y"}, false, "", "2 labels for a network with 10 classes"},
		{"wrong count, optional", []string{"x", "y"}, true, "class 0", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tinyWeights, Options{Transform: preprocess.DefaultOptions(), Labels: tt.labels, LabelsOptional: tt.optional})
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tinyWeights) {
					t.Fatalf("error %v, want %q naming the file", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.Labels()[0]; got != tt.first || len(c.Labels()) != 10 {
				t.Errorf("labels %v", c.Labels())
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pth")
	if err := os.WriteFile(garbage, []byte("not a checkpoint"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing.pth"), garbage, dir} {
		if _, err := Load(path, Options{Transform: preprocess.DefaultOptions()}); err == nil || !strings.Contains(err.Error(), path) {
			t.Errorf("Load(%s): %v, want an error naming it", path, err)
		}
	}
}

func TestLogitsShapes(t *testing.T) {
	c := loadTiny(t)
	r := c.NewRunner(1)
	if got, err := r.Logits(nil); err != nil || got.Shape[0] != 0 || got.Shape[1] != 10 {
		t.Errorf("empty batch: %v %v", got, err)
	}
	a, b := ops.New(3, 32, 32), ops.New(3, 16, 16)
	if _, err := r.Logits([]*ops.Tensor{a, b}); err == nil || !strings.Contains(err.Error(), "image 1") {
		t.Errorf("mixed shapes: %v", err)
	}
	if _, err := r.Forward(ops.New(1, 2, 8, 8)); err == nil {
		t.Error("2-channel input accepted")
	}
}

// TestRankNonFinite: NaN logits rank last and marshal as null, the record
// says it is not finite, and JSON never fails.
func TestRankNonFinite(t *testing.T) {
	c := &Classifier{labels: []string{"x", "y", "z"}}
	nan := float32(math.NaN())
	logits := &ops.Tensor{Shape: []int{2, 3}, Data: []float32{1, nan, 2, 0, 1, 2}}
	preds := c.Rank(logits, 3)
	bad, good := Record{File: "a", Predictions: preds[0]}, Record{File: "b", Predictions: preds[1]}
	if bad.Finite() || !good.Finite() {
		t.Errorf("Finite: %v %v", bad.Finite(), good.Finite())
	}
	b, err := json.Marshal(bad)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"probability":null`) {
		t.Errorf("NaN record: %s", b)
	}
	if good.Predictions[0].Index != 2 || good.Predictions[0].Label != "z" {
		t.Errorf("top of the good row: %+v", good.Predictions[0])
	}
}

// TestScoreJSON: Score writes what encoding/json writes for a float32, and
// reads it back.
func TestScoreJSON(t *testing.T) {
	for _, v := range []float32{0, 1, -1, 0.8599675, 5.3976135, 1e-7, 1.5e-6, 9.99e-7, 3e20, 1e21, 2.5e30, -4e-9, math.MaxFloat32, math.SmallestNonzeroFloat32} {
		want, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := json.Marshal(Score(v))
		if err != nil || string(got) != string(want) {
			t.Errorf("%g: %s, encoding/json writes %s", v, got, want)
		}
		var back Score
		if err := json.Unmarshal(got, &back); err != nil || float32(back) != v {
			t.Errorf("%s read back as %v (%v)", got, back, err)
		}
	}
	for _, v := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if got, err := json.Marshal(Score(v)); err != nil || string(got) != "null" {
			t.Errorf("%v: %s %v, want null", v, got, err)
		}
	}
	var s Score
	if err := json.Unmarshal([]byte("null"), &s); err != nil || s.Finite() {
		t.Errorf("null read as %v (%v)", s, err)
	}
}

func TestFailedRecord(t *testing.T) {
	b, err := json.Marshal(Failed("x.jpg", os.ErrNotExist))
	if err != nil || string(b) != `{"file":"x.jpg","error":"file does not exist"}` {
		t.Errorf("%s %v", b, err)
	}
}

// TestLoadBF16: a BF16 network (where the CPU runs it) gives logits close
// to FP32's, and says which precision it runs.
func TestLoadBF16(t *testing.T) {
	fp32 := loadTiny(t)
	opts := Options{Transform: fp32.Transform(), Labels: tinyLabels, Precision: gemm.BF16}
	bf16, err := Load(tinyWeights, opts)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[bool]gemm.Precision{true: gemm.BF16, false: gemm.FP32}[gemm.HasBF16()]; bf16.Config().Precision != want {
		t.Fatalf("precision %v, want %v", bf16.Config().Precision, want)
	}
	x, err := fp32.DecodeFile(filepath.Join(photosDir, "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := fp32.NewRunner(1).Logits([]*ops.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bf16.NewRunner(1).Logits([]*ops.Tensor{x})
	if err != nil {
		t.Fatal(err)
	}
	// bfloat16 keeps 8 bits of mantissa: after the whole network, logits
	// within a tenth of the largest, and the clear top-1 (86 %) unchanged.
	maxAbs := 0.0
	for _, v := range a.Data {
		maxAbs = math.Max(maxAbs, math.Abs(float64(v)))
	}
	for i := range a.Data {
		if d := math.Abs(float64(a.Data[i] - b.Data[i])); d > 0.1*maxAbs {
			t.Errorf("logit %d: fp32 %v, bf16 %v", i, a.Data[i], b.Data[i])
		}
	}
	if ta, tb := ops.TopK(a.Data, 1)[0], ops.TopK(b.Data, 1)[0]; ta != tb {
		t.Errorf("top-1: fp32 class %d, bf16 class %d", ta, tb)
	}
}

// TestNotRes2Net: a state dict that is no Res2Net is reported key by key
// against the Res2Net-50 of its layout, not by the first key that failed.
func TestNotRes2Net(t *testing.T) {
	tests := []struct {
		name    string
		tensors map[string]*ops.Tensor
		want    []string
	}{
		{
			name: "torchvision ResNet-18 keys",
			tensors: map[string]*ops.Tensor{
				"conv1.weight":          ops.New(64, 3, 7, 7),
				"layer1.0.conv1.weight": ops.New(64, 64, 3, 3),
				"fc.weight":             ops.New(1000, 512),
				"fc.bias":               ops.New(1000),
			},
			want: []string{"layer1.0.conv3.weight: missing", "fc.weight: shape 1000x2048 expected, checkpoint has 1000x512",
				"layer1.0.conv1.weight: shape 104x64x1x1 expected", "bn1.weight: missing"},
		},
		{
			name: "Holocron keys, no head",
			tensors: map[string]*ops.Tensor{
				"features.0.weight": ops.New(64, 3, 7, 7),
				"other.weight":      ops.New(3),
			},
			want: []string{"head.weight: missing", "features.1.weight: missing", "other.weight: unexpected"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.tensors, Options{Transform: preprocess.DefaultOptions()})
			if err == nil {
				t.Fatal("New succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not mention %q:\n%v", w, err)
				}
			}
		})
	}
}
