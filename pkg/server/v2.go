package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/res2net/res2net/pkg/classify"
)

// The Open Inference Protocol v2, REST flavour:
// https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/

// modelVersion is the one version of every served model.
const modelVersion = "1"

// platform names this server's model format in model metadata.
const platform = "res2net_go"

// Names of the tensors a model takes and gives.
const (
	inputImages   = "image"         // BYTES [N]: encoded image files
	inputPixels   = "input"         // FP32 [N,3,H,W]: normalised pixels
	outLogits     = "logits"        // FP32 [N,classes]
	outLabels     = "labels"        // BYTES [N,k]: top-k class names
	outProbs      = "probabilities" // FP32 [N,k]: their softmax probabilities
	outClasses    = "classes"       // INT64 [N,k]: their indices
	paramTopK     = "top_k"         // request parameter asking for the top-k outputs
	defaultTopK   = 5               // k when top-k outputs are named without top_k
	maxTensorDims = 8
)

type tensorMetadata struct {
	Name     string `json:"name"`
	Datatype string `json:"datatype"`
	Shape    []int  `json:"shape"`
}

type modelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions"`
	Platform string           `json:"platform"`
	Inputs   []tensorMetadata `json:"inputs"`
	Outputs  []tensorMetadata `json:"outputs"`
}

type serverMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// inferRequest is the body of POST /v2/models/{name}/infer.
type inferRequest struct {
	ID         string           `json:"id,omitempty"`
	Parameters map[string]any   `json:"parameters,omitempty"`
	Inputs     []requestInput   `json:"inputs"`
	Outputs    []requestedOuput `json:"outputs,omitempty"`
}

type requestInput struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
	binary     []byte          // the tensor's data in the binary extension
}

type requestedOuput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

type inferResponse struct {
	ModelName    string         `json:"model_name"`
	ModelVersion string         `json:"model_version"`
	ID           string         `json:"id,omitempty"`
	Outputs      []outputTensor `json:"outputs"`
}

type outputTensor struct {
	Name       string         `json:"name"`
	Datatype   string         `json:"datatype"`
	Shape      []int          `json:"shape"`
	Parameters map[string]any `json:"parameters,omitempty"`
	Data       any            `json:"data,omitempty"`
}

func (s *Server) handleLive(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(http.StatusOK)
}

// handleReady answers 200 once the models are loaded and until shutdown
// starts, 503 otherwise.
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if !s.ready.Load() {
		writeError(w, http.StatusServiceUnavailable, "not ready")
		return
	}
	w.WriteHeader(http.StatusOK)
}

func (s *Server) handleServerMetadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, serverMetadata{Name: "res2net", Version: s.opts.Version, Extensions: []string{}})
}

// lookup finds the model of a /v2/models/{name}[/versions/{version}] path,
// or answers 404.
func (s *Server) lookup(w http.ResponseWriter, r *http.Request) *served {
	name := r.PathValue("name")
	m := s.model(name)
	if m == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no model named %q", name))
		return nil
	}
	if v := r.PathValue("version"); v != "" && v != modelVersion {
		writeError(w, http.StatusNotFound, fmt.Sprintf("model %q has no version %q (only %q)", name, v, modelVersion))
		return nil
	}
	return m
}

func (s *Server) handleModelMetadata(w http.ResponseWriter, r *http.Request) {
	m := s.lookup(w, r)
	if m == nil {
		return
	}
	writeJSON(w, http.StatusOK, modelMetadata{
		Name:     m.name,
		Versions: []string{modelVersion},
		Platform: platform,
		Inputs: []tensorMetadata{
			{Name: inputImages, Datatype: "BYTES", Shape: []int{-1}},
			{Name: inputPixels, Datatype: "FP32", Shape: []int{-1, m.shape[0], m.shape[1], m.shape[2]}},
		},
		Outputs: []tensorMetadata{
			{Name: outLogits, Datatype: "FP32", Shape: []int{-1, len(m.labels)}},
			{Name: outLabels, Datatype: "BYTES", Shape: []int{-1, -1}},
			{Name: outProbs, Datatype: "FP32", Shape: []int{-1, -1}},
			{Name: outClasses, Datatype: "INT64", Shape: []int{-1, -1}},
		},
	})
}

func (s *Server) handleModelReady(w http.ResponseWriter, r *http.Request) {
	if s.lookup(w, r) == nil {
		return
	}
	s.handleReady(w, r)
}

func (s *Server) handleInfer(w http.ResponseWriter, r *http.Request) {
	m := s.lookup(w, r)
	if m == nil {
		return
	}
	body, err := readBody(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	req, err := parseInferRequest(r.Header, body)
	if err != nil {
		fail(w, r, err)
		return
	}
	body = nil // the base64 text can go once decoded
	outputs, k, err := requestedOutputs(req, len(m.labels))
	if err != nil {
		fail(w, r, err)
		return
	}
	var logits [][]float32
	in := &req.Inputs[0]
	switch in.Datatype {
	case "BYTES":
		var images []image
		if images, err = bytesInput(in); err == nil {
			logits, err = s.classify(r.Context(), m, images)
		}
	case "FP32":
		var pixels [][]float32
		if pixels, err = pixelInput(in, m.shape); err == nil {
			if err = s.checkCount(len(pixels)); err == nil {
				logits, err = m.batcher.infer(r.Context(), pixels)
			}
		}
	default:
		err = badRequest("input %q has datatype %q; want BYTES (encoded images) or FP32 (normalised pixels)", in.Name, in.Datatype)
	}
	if err != nil {
		fail(w, r, err)
		return
	}
	resp := inferResponse{ModelName: m.name, ModelVersion: modelVersion, ID: req.ID}
	var top [][]classify.Prediction
	if k > 0 {
		top = m.rank(logits, k)
	}
	var binary [][]byte
	for _, o := range outputs {
		t := outputOf(o.name, logits, top, k)
		if o.binary {
			b := encodeBinary(t.Data)
			t.Data, t.Parameters = nil, map[string]any{paramBinarySize: len(b)}
			binary = append(binary, b)
		}
		resp.Outputs = append(resp.Outputs, t)
	}
	if binary == nil {
		writeJSON(w, http.StatusOK, resp)
		return
	}
	writeBinary(w, resp, binary)
}

// output is one output to send, and whether in binary.
type output struct {
	name   string
	binary bool
}

// requestedOutputs returns the outputs to send and the k of the top-k
// ones: by default the logits, and the top-k outputs too when the request's
// top_k parameter is set. Outputs go in binary when the request or the
// output asks for it (binary_data_output, binary_data).
func requestedOutputs(req *inferRequest, classes int) ([]output, int, error) {
	names, k, err := outputNames(req, classes)
	if err != nil {
		return nil, 0, err
	}
	all, err := flag(req.Parameters, paramBinaryOutput)
	if err != nil {
		return nil, 0, err
	}
	out := make([]output, len(names))
	for i, name := range names {
		out[i] = output{name: name, binary: all}
		for _, o := range req.Outputs {
			if o.Name == name {
				b, err := flag(o.Parameters, paramBinaryData)
				if err != nil {
					return nil, 0, err
				}
				if _, set := o.Parameters[paramBinaryData]; set {
					out[i].binary = b
				}
			}
		}
	}
	return out, k, nil
}

// outputNames returns the names of the outputs to send and k.
func outputNames(req *inferRequest, classes int) ([]string, int, error) {
	k := 0
	if v, ok := req.Parameters[paramTopK]; ok {
		f, isNum := v.(float64)
		if !isNum || f != math.Trunc(f) || f < 1 {
			return nil, 0, badRequest("parameter %s must be a positive integer, got %v", paramTopK, v)
		}
		k = int(min(f, float64(classes)))
	}
	if len(req.Outputs) == 0 {
		if k == 0 {
			return []string{outLogits}, 0, nil
		}
		return []string{outLogits, outLabels, outProbs, outClasses}, k, nil
	}
	var names []string
	for _, o := range req.Outputs {
		switch o.Name {
		case outLabels, outProbs, outClasses:
			if k == 0 {
				k = min(defaultTopK, classes)
			}
		case outLogits:
		default:
			return nil, 0, badRequest("no output named %q (the outputs are %s, %s, %s and %s)", o.Name, outLogits, outLabels, outProbs, outClasses)
		}
		names = append(names, o.Name)
	}
	return names, k, nil
}

// outputOf builds one output tensor from the batch's logits and top-k
// predictions. Scores that are not finite are written as null, as predict
// does, since JSON has no NaN.
func outputOf(name string, logits [][]float32, top [][]classify.Prediction, k int) outputTensor {
	n := len(logits)
	switch name {
	case outLogits:
		var data []classify.Score
		for _, row := range logits {
			for _, v := range row {
				data = append(data, classify.Score(v))
			}
		}
		return outputTensor{Name: name, Datatype: "FP32", Shape: []int{n, len(logits[0])}, Data: data}
	}
	var strs []string
	var probs []classify.Score
	var idx []int
	for _, preds := range top {
		for _, p := range preds {
			strs = append(strs, p.Label)
			probs = append(probs, p.Probability)
			idx = append(idx, p.Index)
		}
	}
	shape := []int{n, k}
	switch name {
	case outLabels:
		return outputTensor{Name: name, Datatype: "BYTES", Shape: shape, Data: strs}
	case outProbs:
		return outputTensor{Name: name, Datatype: "FP32", Shape: shape, Data: probs}
	default:
		return outputTensor{Name: name, Datatype: "INT64", Shape: shape, Data: idx}
	}
}

// elements checks a tensor shape and returns its number of elements.
func elements(in *requestInput) (int, error) {
	if len(in.Shape) == 0 || len(in.Shape) > maxTensorDims {
		return 0, badRequest("input %q has shape %v; want 1 to %d dimensions", in.Name, in.Shape, maxTensorDims)
	}
	n := int64(1)
	for _, d := range in.Shape {
		if d < 1 {
			return 0, badRequest("input %q has shape %v; every dimension must be at least 1", in.Name, in.Shape)
		}
		// The body limit bounds the data far below this; refusing here
		// keeps the product from overflowing.
		if n *= d; n > math.MaxInt32 {
			return 0, badRequest("input %q has shape %v, too many elements", in.Name, in.Shape)
		}
	}
	return int(n), nil
}

// bytesInput reads a BYTES tensor of base64-encoded image files (one per
// element, in a flat or nested JSON array).
func bytesInput(in *requestInput) ([]image, error) {
	n, err := elements(in)
	if err != nil {
		return nil, err
	}
	name := func(i int) string { return in.Name + "[" + strconv.Itoa(i) + "]" }
	if in.binary != nil {
		elems, err := splitBytes(in.binary)
		if err != nil {
			return nil, badRequest("input %q: %v", in.Name, err)
		}
		if len(elems) != n {
			return nil, badRequest("input %q has shape %v (%d elements) but %d in its binary data", in.Name, in.Shape, n, len(elems))
		}
		images := make([]image, n)
		for i, e := range elems {
			images[i] = image{name: name(i), data: e}
		}
		return images, nil
	}
	var strs []string
	if err := flattenStrings(in.Data, &strs, 0); err != nil {
		return nil, badRequest("input %q: %v", in.Name, err)
	}
	if len(strs) != n {
		return nil, badRequest("input %q has shape %v (%d elements) but %d strings", in.Name, in.Shape, n, len(strs))
	}
	images := make([]image, n)
	for i, s := range strs {
		data, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, badRequest("input %q element %d is not base64: %v", in.Name, i, err)
		}
		images[i] = image{name: name(i), data: data}
	}
	return images, nil
}

// flattenStrings appends the strings of a JSON array, nested at most
// maxTensorDims deep, to out.
func flattenStrings(raw json.RawMessage, out *[]string, depth int) error {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return err
		}
		*out = append(*out, s)
		return nil
	}
	if depth >= maxTensorDims {
		return fmt.Errorf("data nested deeper than %d", maxTensorDims)
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return fmt.Errorf("data must be an array of base64 strings")
	}
	for _, it := range items {
		if err := flattenStrings(it, out, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// pixelInput reads an FP32 tensor of shape [N, C, H, W] matching the model's
// input and returns its images.
func pixelInput(in *requestInput, shape []int) ([][]float32, error) {
	n, err := elements(in)
	if err != nil {
		return nil, err
	}
	if len(in.Shape) != 4 || in.Shape[1] != int64(shape[0]) || in.Shape[2] != int64(shape[1]) || in.Shape[3] != int64(shape[2]) {
		return nil, badRequest("input %q has shape %v; want [N,%d,%d,%d]", in.Name, in.Shape, shape[0], shape[1], shape[2])
	}
	var data []float32
	if in.binary != nil {
		data, err = decodeFloats(in.binary)
	} else {
		// Each number takes at least two bytes of text ("0,"): the shape
		// alone must not size the buffer.
		data, err = parseNumbers(in.Data, make([]float32, 0, min(n, len(in.Data)/2+1)))
	}
	if err != nil {
		return nil, badRequest("input %q: %v", in.Name, err)
	}
	if len(data) != n {
		return nil, badRequest("input %q has shape %v (%d elements) but %d numbers", in.Name, in.Shape, n, len(data))
	}
	size := shape[0] * shape[1] * shape[2]
	out := make([][]float32, in.Shape[0])
	for i := range out {
		out[i] = data[i*size : (i+1)*size]
	}
	return out, nil
}

// parseNumbers appends the numbers of a JSON array of numbers, flat or
// nested, to out. It scans the text directly: a 224x224 image is 150,528
// numbers, which encoding/json would box one by one.
func parseNumbers(raw []byte, out []float32) ([]float32, error) {
	depth, i := 0, 0
	expectValue := true // after '[' or ','
	for i < len(raw) {
		switch c := raw[i]; {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '[':
			if !expectValue {
				return out, fmt.Errorf("malformed array at byte %d", i)
			}
			depth++
			if depth > maxTensorDims {
				return out, fmt.Errorf("data nested deeper than %d", maxTensorDims)
			}
			i++
		case c == ']':
			if depth == 0 {
				return out, fmt.Errorf("malformed array at byte %d", i)
			}
			depth--
			expectValue = false
			i++
		case c == ',':
			if expectValue || depth == 0 {
				return out, fmt.Errorf("malformed array at byte %d", i)
			}
			expectValue = true
			i++
		default:
			if !expectValue || depth == 0 {
				return out, fmt.Errorf("malformed array at byte %d", i)
			}
			j := i
			for j < len(raw) && raw[j] != ',' && raw[j] != ']' && raw[j] != ' ' && raw[j] != '\n' && raw[j] != '\t' && raw[j] != '\r' {
				j++
			}
			v, err := strconv.ParseFloat(string(raw[i:j]), 32)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return out, fmt.Errorf("%q at byte %d is not a finite number", raw[i:j], i)
			}
			out = append(out, float32(v))
			expectValue = false
			i = j
		}
	}
	if depth != 0 || len(raw) == 0 {
		return out, fmt.Errorf("data must be an array of numbers")
	}
	return out, nil
}
