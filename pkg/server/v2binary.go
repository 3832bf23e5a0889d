package server

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/res2net/res2net/pkg/classify"
)

// The protocol's binary tensor data extension, which Triton's and
// KServe's clients use by default: the body is the JSON request, of
// Inference-Header-Content-Length bytes, followed by the inputs' raw data,
// each input saying its size in the binary_data_size parameter. Numbers
// are little-endian; a BYTES element is a 4-byte length and its bytes.

const (
	headerJSONLength  = "Inference-Header-Content-Length"
	paramBinarySize   = "binary_data_size"
	paramBinaryData   = "binary_data"        // output parameter
	paramBinaryOutput = "binary_data_output" // request parameter: every output in binary
)

// parseInferRequest reads an inference request, in JSON or with binary
// tensor data, and checks that it has one input.
func parseInferRequest(h http.Header, body []byte) (*inferRequest, error) {
	head, rest := body, []byte(nil)
	if v := h.Get(headerJSONLength); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > len(body) {
			return nil, badRequest("%s is %q for a body of %d bytes", headerJSONLength, v, len(body))
		}
		head, rest = body[:n], body[n:]
	}
	var req inferRequest
	if err := json.Unmarshal(head, &req); err != nil {
		return nil, badRequest("request body is not an inference request: %v", err)
	}
	if len(req.Inputs) != 1 {
		return nil, badRequest("want exactly one input tensor (%q BYTES or %q FP32), got %d", inputImages, inputPixels, len(req.Inputs))
	}
	for i := range req.Inputs {
		in := &req.Inputs[i]
		v, ok := in.Parameters[paramBinarySize]
		if !ok {
			continue
		}
		size, isNum := v.(float64)
		if !isNum || size != math.Trunc(size) || size < 0 || size > float64(len(rest)) {
			return nil, badRequest("input %q: %s %v, with %d bytes of binary data left", in.Name, paramBinarySize, v, len(rest))
		}
		in.binary, rest = rest[:int(size)], rest[int(size):]
		if in.binary == nil {
			in.binary = []byte{}
		}
	}
	if len(rest) > 0 {
		return nil, badRequest("%d bytes of binary data that no input claims", len(rest))
	}
	return &req, nil
}

// flag reads a boolean parameter (false when absent).
func flag(params map[string]any, name string) (bool, error) {
	v, ok := params[name]
	if !ok {
		return false, nil
	}
	b, isBool := v.(bool)
	if !isBool {
		return false, badRequest("parameter %s must be true or false, got %v", name, v)
	}
	return b, nil
}

// splitBytes splits binary BYTES data into its elements.
func splitBytes(b []byte) ([][]byte, error) {
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			return nil, fmt.Errorf("binary BYTES data ends inside an element's length")
		}
		n := binary.LittleEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			return nil, fmt.Errorf("binary BYTES element %d of %d bytes, more than the %d left", len(out), n, len(b)-4)
		}
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out, nil
}

// decodeFloats reads binary FP32 data.
func decodeFloats(b []byte) ([]float32, error) {
	if len(b)%4 != 0 {
		return nil, fmt.Errorf("binary FP32 data of %d bytes, not a multiple of 4", len(b))
	}
	out := make([]float32, len(b)/4)
	for i := range out {
		v := math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("value %d is not a finite number", i)
		}
		out[i] = v
	}
	return out, nil
}

// encodeBinary writes an output tensor's data as the extension lays it
// out.
func encodeBinary(data any) []byte {
	var out []byte
	switch d := data.(type) {
	case []classify.Score:
		for _, v := range d {
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(v)))
		}
	case []int:
		for _, v := range d {
			out = binary.LittleEndian.AppendUint64(out, uint64(v))
		}
	case []string:
		for _, v := range d {
			out = binary.LittleEndian.AppendUint32(out, uint32(len(v)))
			out = append(out, v...)
		}
	default:
		panic(fmt.Sprintf("encodeBinary: %T", data)) // outputOf makes only the types above
	}
	return out
}

// writeBinary sends the JSON response followed by the binary outputs.
func writeBinary(w http.ResponseWriter, resp inferResponse, binary [][]byte) {
	head, err := json.Marshal(resp)
	if err != nil {
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("encoding the response: %v", err))
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set(headerJSONLength, strconv.Itoa(len(head)))
	w.WriteHeader(http.StatusOK)
	w.Write(head)
	for _, b := range binary {
		w.Write(b)
	}
}
