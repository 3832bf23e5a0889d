package server

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	goimage "image"
	"image/png"
	"mime/multipart"
	"net"
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/res2net/res2net/pkg/registry"
)

// multipartBody builds a form with the given parts (field name, file name,
// content).
func multipartBody(t *testing.T, parts [][3]string) ([]byte, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var err error
		if p[1] == "" {
			err = mw.WriteField(p[0], p[2])
		} else {
			var fw interface{ Write([]byte) (int, error) }
			if fw, err = mw.CreateFormFile(p[0], p[1]); err == nil {
				_, err = fw.Write([]byte(p[2]))
			}
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), mw.FormDataContentType()
}

// checkRecord compares a record with PyTorch's ranking of the photo.
func checkRecord(t *testing.T, what string, rec classify.Record, p photo, k int) {
	t.Helper()
	want := referenceLogits(t, p)
	if len(rec.Predictions) != k {
		t.Fatalf("%s: %d predictions, want %d", what, len(rec.Predictions), k)
	}
	top := rankOf(want)
	first := rec.Predictions[0]
	if first.Rank != 1 || first.Index != top || first.Label != registry.Default.Classes[top] {
		t.Errorf("%s: top-1 %+v, PyTorch's class %d", what, first, top)
	}
	got := make([]float32, len(rec.Predictions))
	ref := make([]float32, len(rec.Predictions))
	for i, pr := range rec.Predictions {
		got[i], ref[i] = float32(pr.Logit), want[pr.Index]
	}
	closeTo(t, what, got, ref)
}

func TestSimpleEndpoints(t *testing.T) {
	_, url := newTestServer(t, Options{})
	ps := photos(t)
	raw := readPhoto(t, ps[0].File)
	for _, tt := range []struct{ method, path string }{
		{"POST", "/v1/classify"},
		{"POST", "/v1/classify?model=tiny&topk=3"},
		{"POST", "/predictions/tiny?topk=3"},
		{"PUT", "/predictions/tiny"},
	} {
		status, body, _ := do(t, tt.method, url+tt.path, "image/jpeg", raw)
		var rec classify.Record
		if status != 200 || json.Unmarshal(body, &rec) != nil {
			t.Fatalf("%s %s: %d %s", tt.method, tt.path, status, body)
		}
		k := 5
		if bytes.Contains([]byte(tt.path), []byte("topk=3")) {
			k = 3
		}
		if rec.File != rawName {
			t.Errorf("%s %s: file %q", tt.method, tt.path, rec.File)
		}
		checkRecord(t, tt.method+" "+tt.path, rec, ps[0], k)
	}

	// Several files in one form; a part that is not an image gets its
	// error record and the others are still classified.
	body, ctype := multipartBody(t, [][3]string{
		{"file", ps[1].File, string(readPhoto(t, ps[1].File))},
		{"note", "", "not a file"},
		{"file", "bad.png", "garbage"},
		{"file", ps[5].File, string(readPhoto(t, ps[5].File))},
	})
	status, out, _ := do(t, "POST", url+"/v1/classify?topk=2", ctype, body)
	var recs []classify.Record
	if status != 200 || json.Unmarshal(out, &recs) != nil || len(recs) != 3 {
		t.Fatalf("multipart: %d %s", status, out)
	}
	checkRecord(t, "multipart "+ps[1].File, recs[0], ps[1], 2)
	checkRecord(t, "multipart "+ps[5].File, recs[2], ps[5], 2)
	if recs[0].File != ps[1].File || recs[1].File != "bad.png" || recs[1].Error == "" || len(recs[1].Predictions) != 0 {
		t.Errorf("multipart records %+v", recs)
	}

	status, out, _ = do(t, "GET", url+"/v1/models", "", nil)
	if status != 200 || !bytes.Contains(out, []byte(`{"name":"tiny","labels":["tench",`)) {
		t.Errorf("/v1/models: %d %s", status, out)
	}
}

func TestSimpleErrors(t *testing.T) {
	_, url := newTestServer(t, Options{MaxBody: 1 << 20, Queue: 2})
	img := string(readPhoto(t, "coffee.png"))
	threeFiles, ctype3 := multipartBody(t, [][3]string{{"file", "a.png", img}, {"file", "b.png", img}, {"file", "c.png", img}})
	noFiles, ctype0 := multipartBody(t, [][3]string{{"note", "", "x"}})
	badFile, ctypeBad := multipartBody(t, [][3]string{{"file", "x.jpg", "\xff\xd8\xff\xe0 truncated"}})
	tests := []struct {
		name, method, path, ctype string
		body                      []byte
		status                    int
		want                      string
	}{
		{"garbage", "POST", "/v1/classify", "", []byte("hello"), 400, "upload"},
		{"empty", "PUT", "/predictions/tiny", "", nil, 400, "empty request body"},
		{"bad topk", "POST", "/v1/classify?topk=0", "", []byte(img), 400, "topk"},
		{"unknown model", "POST", "/v1/classify?model=nope", "", []byte(img), 404, `no model named "nope"`},
		{"unknown predictions model", "PUT", "/predictions/nope", "", []byte(img), 404, `no model named "nope"`},
		{"too many files", "POST", "/v1/classify", ctype3, threeFiles, 400, "more than the queue holds (2)"},
		{"no file parts", "POST", "/v1/classify", ctype0, noFiles, 400, `no "file" parts`},
		{"only a bad file", "POST", "/v1/classify", ctypeBad, badFile, 400, "x.jpg"},
		{"broken form", "POST", "/v1/classify", "multipart/form-data; boundary=zzz", []byte("--zzz\r\nnope"), 400, "multipart form"},
		{"over the limit", "POST", "/v1/classify", "", make([]byte, 2<<20), 413, "over the limit"},
		{"wrong method", "GET", "/v1/classify", "", nil, 405, "use POST"},
		{"no such path", "GET", "/v1/nope", "", nil, 404, "no endpoint GET /v1/nope"},
		{"no listing of the page's files", "GET", "/static/", "", nil, 404, "no endpoint GET /static/"},
		{"no such page file", "GET", "/static/nope.js", "", nil, 404, ""},
	}
	for _, tt := range tests {
		status, body, _ := do(t, tt.method, url+tt.path, tt.ctype, tt.body)
		wantError(t, tt.name, status, body, tt.status, tt.want)
	}
}

// TestBodyMemory holds one body of 1 MiB open and checks that a second one
// that would pass the memory for bodies gets 503 while a small one still
// goes through, and that closing the first frees its share.
func TestBodyMemory(t *testing.T) {
	_, url := newTestServer(t, Options{MaxBody: 1 << 20, BodyMemory: 3 << 19})
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /predictions/tiny HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 1<<20)
	waitFor(t, func() bool { return metricValue(t, url, "res2net_http_requests_in_flight") >= 2 }) // it and the scrape

	big := make([]byte, 1<<20)
	status, body, header := do(t, "POST", url+"/predictions/tiny", "", big)
	wantError(t, "second large body", status, body, 503, "too many request bodies")
	if header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if status, body, _ := do(t, "POST", url+"/predictions/tiny", "", readPhoto(t, "coffee.png")); status != 200 {
		t.Errorf("small body beside it: %d %s", status, body)
	}
	conn.Close()
	waitFor(t, func() bool { return metricValue(t, url, "res2net_http_requests_in_flight") == 1 })
	status, body, _ = do(t, "POST", url+"/predictions/tiny", "", big)
	wantError(t, "large body once the first is gone", status, body, 400, "upload")
}

// TestPixelLimit serves a model whose transform refuses images of more
// than 10,000 pixels: a larger photo is a 400 naming the limit, on every
// endpoint, and a small one still passes.
func TestPixelLimit(t *testing.T) {
	pre := preprocess.DefaultOptions()
	pre.MaxPixels = 10_000
	c, err := classify.Load(tinyWeights, classify.Options{Transform: pre, Labels: registry.Default.Classes})
	if err != nil {
		t.Fatal(err)
	}
	s := New(Options{})
	if err := s.AddModel(tinyName, c, 0); err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	url := startHTTP(t, s)
	photo := readPhoto(t, "coffee.png") // 288x192 = 55,296 pixels
	status, body, _ := do(t, "PUT", url+"/predictions/tiny", "", photo)
	wantError(t, "predictions", status, body, 400, "more than the limit of 10000")
	v2 := mustJSON(t, map[string]any{"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{1},
		"data": []string{base64.StdEncoding.EncodeToString(photo)}}}})
	status, body, _ = do(t, "POST", url+"/v2/models/tiny/infer", "application/json", v2)
	wantError(t, "v2 infer", status, body, 400, "more than the limit of 10000")

	var small bytes.Buffer
	if err := png.Encode(&small, goimage.NewGray(goimage.Rect(0, 0, 100, 100))); err != nil {
		t.Fatal(err)
	}
	if status, body, _ := do(t, "PUT", url+"/predictions/tiny", "", small.Bytes()); status != 200 {
		t.Errorf("a 100x100 image: %d %s", status, body)
	}
}
