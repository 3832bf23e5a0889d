package server

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/res2net/res2net/internal/npy"
	"github.com/res2net/res2net/pkg/registry"
)

func TestHealthAndMetadata(t *testing.T) {
	s, url := newTestServer(t, Options{Version: "v-test"})
	tests := []struct {
		path   string
		status int
		body   string // substring of the body
	}{
		{"/v2/health/live", 200, ""},
		{"/v2/health/ready", 200, ""},
		{"/v2", 200, `"version":"v-test"`},
		{"/v2/models/tiny", 200, `"shape":[-1,3,224,224]`},
		{"/v2/models/tiny/versions/1", 200, `{"name":"logits","datatype":"FP32","shape":[-1,10]}`},
		{"/v2/models/tiny/ready", 200, ""},
		{"/v2/models/tiny/versions/1/ready", 200, ""},
		{"/v2/models/nope", 404, `"error":"no model named \"nope\""`},
		{"/v2/models/nope/ready", 404, `"error"`},
		{"/v2/models/tiny/versions/2", 404, `no version`},
		{"/v2/nothing", 404, `"error"`},
	}
	for _, tt := range tests {
		status, body, _ := do(t, "GET", url+tt.path, "", nil)
		if status != tt.status || !strings.Contains(string(body), tt.body) {
			t.Errorf("GET %s: %d %s, want %d with %s", tt.path, status, body, tt.status, tt.body)
		}
	}
	s.SetReady(false)
	for _, p := range []string{"/v2/health/ready", "/v2/models/tiny/ready"} {
		if status, body, _ := do(t, "GET", url+p, "", nil); status != http.StatusServiceUnavailable {
			t.Errorf("GET %s while not ready: %d %s, want 503", p, status, body)
		}
	}
	if status, _, _ := do(t, "GET", url+"/v2/health/live", "", nil); status != 200 {
		t.Errorf("live while not ready: %d, want 200", status)
	}
}

// infer posts a v2 inference request and decodes the answer.
func infer(t testing.TB, url string, req any) (int, inferResponseForTest, []byte) {
	t.Helper()
	status, body, _ := do(t, "POST", url+"/v2/models/tiny/infer", "application/json", mustJSON(t, req))
	var resp inferResponseForTest
	if status == 200 {
		if err := json.Unmarshal(body, &resp); err != nil {
			t.Fatalf("%v: %s", err, body)
		}
	}
	return status, resp, body
}

// inferResponseForTest decodes output data as JSON values.
type inferResponseForTest struct {
	ModelName    string `json:"model_name"`
	ModelVersion string `json:"model_version"`
	ID           string `json:"id"`
	Outputs      []struct {
		Name       string `json:"name"`
		Datatype   string `json:"datatype"`
		Shape      []int  `json:"shape"`
		Parameters struct {
			BinarySize int `json:"binary_data_size"`
		} `json:"parameters"`
		Data json.RawMessage `json:"data"`
	} `json:"outputs"`
}

func (r inferResponseForTest) output(t testing.TB, name string, v any) []int {
	t.Helper()
	for _, o := range r.Outputs {
		if o.Name == name {
			if err := json.Unmarshal(o.Data, v); err != nil {
				t.Fatal(err)
			}
			return o.Shape
		}
	}
	t.Fatalf("no output %q in %+v", name, r)
	return nil
}

// TestInferBytesParity sends every test photo, all in one request, as
// base64 BYTES and compares the logits with PyTorch's.
func TestInferBytesParity(t *testing.T) {
	_, url := newTestServer(t, Options{})
	var data []string
	var want [][]float32
	ps := photos(t)
	for _, p := range ps {
		data = append(data, base64.StdEncoding.EncodeToString(readPhoto(t, p.File)))
		want = append(want, referenceLogits(t, p))
	}
	req := map[string]any{
		"id":         "req-1",
		"parameters": map[string]any{"top_k": 3},
		"inputs":     []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{len(data)}, "data": data}},
	}
	status, resp, body := infer(t, url, req)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body)
	}
	if resp.ModelName != tinyName || resp.ModelVersion != "1" || resp.ID != "req-1" {
		t.Errorf("response header %+v", resp)
	}
	var logits []float32
	shape := resp.output(t, "logits", &logits)
	if len(shape) != 2 || shape[0] != len(data) || shape[1] != 10 || len(logits) != len(data)*10 {
		t.Fatalf("logits shape %v with %d values", shape, len(logits))
	}
	var labels []string
	var classes []int
	var probs []float32
	if s := resp.output(t, "labels", &labels); s[0] != len(data) || s[1] != 3 {
		t.Errorf("labels shape %v", s)
	}
	resp.output(t, "classes", &classes)
	resp.output(t, "probabilities", &probs)
	for i, p := range ps {
		row := logits[i*10 : (i+1)*10]
		closeTo(t, p.File, row, want[i])
		top := rankOf(want[i])
		if classes[i*3] != top || labels[i*3] != registry.Default.Classes[top] {
			t.Errorf("%s: top-1 %d %q, PyTorch's %d", p.File, classes[i*3], labels[i*3], top)
		}
		if !(probs[i*3] >= probs[i*3+1] && probs[i*3+1] >= probs[i*3+2] && probs[i*3] <= 1) {
			t.Errorf("%s: probabilities %v not a decreasing top-3", p.File, probs[i*3:i*3+3])
		}
	}
}

// rankOf returns the index of the largest value.
func rankOf(v []float32) int {
	best := 0
	for i := range v {
		if v[i] > v[best] {
			best = i
		}
	}
	return best
}

// TestInferFP32Parity sends torchvision's eval tensor of two photos, built
// from the committed crops, as nested FP32 data.
func TestInferFP32Parity(t *testing.T) {
	_, url := newTestServer(t, Options{})
	mean := [3]float32{0.485, 0.456, 0.406}
	std := [3]float32{0.229, 0.224, 0.225}
	ps := []photo{photos(t)[0], photos(t)[3]}
	var batch [][][][]float32 // N x C x H x W
	for _, p := range ps {
		crop, shape, err := npy.ReadUint8(filepath.Join(photosDir, p.Crop))
		if err != nil {
			t.Fatal(err)
		}
		h, w := shape[0], shape[1]
		img := make([][][]float32, 3)
		for c := range 3 {
			img[c] = make([][]float32, h)
			for y := range h {
				img[c][y] = make([]float32, w)
				for x := range w {
					// torchvision: ToTensor divides by 255, then (v - mean) / std.
					img[c][y][x] = (float32(crop[(y*w+x)*3+c])/255 - mean[c]) / std[c]
				}
			}
		}
		batch = append(batch, img)
	}
	req := map[string]any{"inputs": []map[string]any{{"name": "input", "datatype": "FP32", "shape": []int{2, 3, 224, 224}, "data": batch}}}
	status, resp, body := infer(t, url, req)
	if status != 200 {
		t.Fatalf("status %d: %s", status, body[:min(len(body), 300)])
	}
	var logits []float32
	resp.output(t, "logits", &logits)
	if len(resp.Outputs) != 1 {
		t.Errorf("%d outputs without top_k, want only the logits", len(resp.Outputs))
	}
	for i, p := range ps {
		closeTo(t, p.File+" (FP32)", logits[i*10:(i+1)*10], referenceLogits(t, p))
	}
}

func TestInferErrors(t *testing.T) {
	_, url := newTestServer(t, Options{MaxBody: 1 << 20, Queue: 4})
	raw := readPhoto(t, "coffee.png")
	photo := base64.StdEncoding.EncodeToString(raw)
	truncated := base64.StdEncoding.EncodeToString(raw[:len(raw)/2])
	bytesReq := func(data any, shape []int) map[string]any {
		return map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": shape, "data": data}}}
	}
	tests := []struct {
		name   string
		body   []byte
		status int
		want   string
	}{
		{"not json", []byte("{nope"), 400, "not an inference request"},
		{"no inputs", []byte(`{"inputs":[]}`), 400, "exactly one input"},
		{"bad datatype", []byte(`{"inputs":[{"name":"x","datatype":"INT8","shape":[1],"data":[1]}]}`), 400, `datatype "INT8"`},
		{"not base64", mustJSON(t, bytesReq([]string{"%%%"}, []int{1})), 400, "not base64"},
		{"not an image", mustJSON(t, bytesReq([]string{base64.StdEncoding.EncodeToString([]byte("hello world"))}, []int{1})), 400, "image[0]"},
		{"truncated image", mustJSON(t, bytesReq([]string{truncated}, []int{1})), 400, "image[0]"},
		{"shape mismatch", mustJSON(t, bytesReq([]string{photo}, []int{2})), 400, "2 elements"},
		{"zero dim", mustJSON(t, bytesReq([]string{photo}, []int{0})), 400, "at least 1"},
		{"huge shape", mustJSON(t, bytesReq([]string{photo}, []int{1 << 20, 1 << 20})), 400, "too many"},
		{"numbers as bytes", mustJSON(t, bytesReq([]int{1}, []int{1})), 400, "base64 strings"},
		{"more than the queue", mustJSON(t, bytesReq([]string{photo, photo, photo, photo, photo}, []int{5})), 400, "more than the queue"},
		{"fp32 wrong shape", []byte(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,2,2],"data":[1,2,3]}]}`), 400, "want [N,3,224,224]"},
		{"fp32 short", []byte(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,224,224],"data":[1,2,3]}]}`), 400, "3 numbers"},
		{"fp32 shape far beyond the data", []byte(`{"inputs":[{"name":"input","datatype":"FP32","shape":[14000,3,224,224],"data":[1]}]}`), 400, "1 numbers"},
		{"fp32 strings", []byte(`{"inputs":[{"name":"input","datatype":"FP32","shape":[1,3,224,224],"data":["1"]}]}`), 400, "not a finite number"},
		{"bad top_k", mustJSON(t, map[string]any{"parameters": map[string]any{"top_k": "five"}, "inputs": bytesReq([]string{photo}, []int{1})["inputs"]}), 400, "top_k"},
		{"unknown output", mustJSON(t, map[string]any{"outputs": []map[string]any{{"name": "nope"}}, "inputs": bytesReq([]string{photo}, []int{1})["inputs"]}), 400, `no output named "nope"`},
		{"over the body limit", mustJSON(t, bytesReq([]string{strings.Repeat("A", 2<<20)}, []int{1})), 413, "over the limit"},
	}
	for _, tt := range tests {
		status, body, _ := do(t, "POST", url+"/v2/models/tiny/infer", "application/json", tt.body)
		wantError(t, tt.name, status, body, tt.status, tt.want)
	}
	status, body, _ := do(t, "POST", url+"/v2/models/other/infer", "application/json", mustJSON(t, bytesReq([]string{photo}, []int{1})))
	wantError(t, "unknown model", status, body, 404, `no model named "other"`)
	status, body, _ = do(t, "POST", url+"/v2/models/tiny/versions/7/infer", "application/json", mustJSON(t, bytesReq([]string{photo}, []int{1})))
	wantError(t, "unknown version", status, body, 404, `no version "7"`)
}

// TestInferRequestedOutputs asks for some outputs by name: only those come
// back, and naming a top-k output without top_k gives the top 5.
func TestInferRequestedOutputs(t *testing.T) {
	_, url := newTestServer(t, Options{})
	photo := base64.StdEncoding.EncodeToString(readPhoto(t, "chelsea.gif"))
	req := map[string]any{
		"outputs": []map[string]any{{"name": "labels"}},
		"inputs":  []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1, 1}, "data": [][]string{{photo}}}},
	}
	status, resp, body := infer(t, url, req)
	if status != 200 || len(resp.Outputs) != 1 {
		t.Fatalf("status %d: %s", status, body)
	}
	var labels []string
	if shape := resp.output(t, "labels", &labels); shape[1] != 5 || len(labels) != 5 {
		t.Errorf("labels shape %v, %d labels; want 5", shape, len(labels))
	}
}
