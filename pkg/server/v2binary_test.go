package server

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"
	"testing"

	"github.com/res2net/res2net/pkg/registry"
)

// binaryRequest lays out a request in the binary tensor data extension.
func binaryRequest(t *testing.T, head map[string]any, data []byte) ([]byte, string) {
	t.Helper()
	h := mustJSON(t, head)
	return append(h, data...), strconv.Itoa(len(h))
}

func postBinary(t *testing.T, url string, body []byte, jsonLen string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url+"/v2/models/tiny/infer", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(headerJSONLength, jsonLen)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, b
}

// TestInferBinary sends two photos as binary BYTES, asks for the logits in
// binary and the labels in JSON, and reads the answer as Triton's client
// does.
func TestInferBinary(t *testing.T) {
	_, url := newTestServer(t, Options{})
	ps := []photo{photos(t)[1], photos(t)[6]}
	var data []byte
	for _, p := range ps {
		img := readPhoto(t, p.File)
		data = binary.LittleEndian.AppendUint32(data, uint32(len(img)))
		data = append(data, img...)
	}
	body, jsonLen := binaryRequest(t, map[string]any{
		"parameters": map[string]any{"top_k": 1},
		"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{2},
			"parameters": map[string]any{"binary_data_size": len(data)}}},
		"outputs": []map[string]any{
			{"name": "logits", "parameters": map[string]any{"binary_data": true}},
			{"name": "labels"},
		},
	}, data)
	resp, out := postBinary(t, url, body, jsonLen)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, out)
	}
	n, err := strconv.Atoi(resp.Header.Get(headerJSONLength))
	if err != nil || n > len(out) {
		t.Fatalf("%s %q for %d bytes", headerJSONLength, resp.Header.Get(headerJSONLength), len(out))
	}
	var head inferResponseForTest
	if err := json.Unmarshal(out[:n], &head); err != nil {
		t.Fatal(err)
	}
	if len(head.Outputs) != 2 || head.Outputs[0].Name != "logits" || head.Outputs[0].Data != nil {
		t.Fatalf("outputs %+v", head.Outputs)
	}
	rawOut := out[n:]
	if size := head.Outputs[0].Parameters.BinarySize; size != 2*10*4 || len(rawOut) != size {
		t.Fatalf("binary logits: binary_data_size %d, %d bytes after the header", size, len(rawOut))
	}
	var labels []string
	head.output(t, "labels", &labels)
	for i, p := range ps {
		got := make([]float32, 10)
		for j := range got {
			got[j] = math.Float32frombits(binary.LittleEndian.Uint32(rawOut[4*(i*10+j):]))
		}
		closeTo(t, p.File+" (binary)", got, referenceLogits(t, p))
		if want := rankOf(referenceLogits(t, p)); labels[i] != registry.Default.Classes[want] {
			t.Errorf("%s: label %q, want %q", p.File, labels[i], registry.Default.Classes[want])
		}
	}
}

func TestInferBinaryErrors(t *testing.T) {
	_, url := newTestServer(t, Options{})
	in := func(size int) map[string]any {
		return map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1},
			"parameters": map[string]any{"binary_data_size": size}}}}
	}
	img := readPhoto(t, "coffee.png")
	good := binary.LittleEndian.AppendUint32(nil, uint32(len(img)))
	good = append(good, img...)
	tests := []struct {
		name    string
		head    map[string]any
		data    []byte
		jsonLen string // "" for the real one
		want    string
	}{
		{"header length not a number", in(len(good)), good, "x", headerJSONLength},
		{"header length past the body", in(len(good)), good, "999999999", headerJSONLength},
		{"size past the data", in(len(good) + 1), good, "", "binary_data_size"},
		{"unclaimed bytes", in(len(good) - 1), good, "", "no input claims"},
		{"element past the data", in(8), []byte{200, 0, 0, 0, 1, 2, 3, 4}, "", "more than the 4 left"},
		{"cut length", in(2), []byte{1, 0}, "", "inside an element's length"},
		{"two elements for one", in(10), []byte{1, 0, 0, 0, 'a', 1, 0, 0, 0, 'b'}, "", "2 in its binary data"},
		{"fp32 not a multiple of 4", map[string]any{"inputs": []map[string]any{{"name": "input", "datatype": "FP32", "shape": []int{1, 3, 224, 224},
			"parameters": map[string]any{"binary_data_size": 3}}}}, []byte{1, 2, 3}, "", "multiple of 4"},
		{"binary_data not a bool", map[string]any{"parameters": map[string]any{"binary_data_output": "yes"},
			"inputs": in(len(good))["inputs"]}, good, "", "binary_data_output"},
	}
	for _, tt := range tests {
		body, n := binaryRequest(t, tt.head, tt.data)
		if tt.jsonLen != "" {
			n = tt.jsonLen
		}
		resp, out := postBinary(t, url, body, n)
		wantError(t, tt.name, resp.StatusCode, out, 400, tt.want)
	}
}
