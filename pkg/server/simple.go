package server

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/res2net/res2net/pkg/classify"
)

// The simple endpoints answer with the records `res2net predict --format
// json` prints: one object for a raw body, an array of them (one per file
// part, in order) for a multipart form.

// simpleTopK is the number of classes the simple endpoints return unless
// ?topk= says otherwise.
const simpleTopK = 5

// rawName is the file name of an image sent as the raw body.
const rawName = "upload"

// filePart reports whether a multipart form part holds an image: "file"
// parts, and TorchServe's "data".
func filePart(p *multipart.Part) bool {
	return p.FormName() == "file" || p.FormName() == "data"
}

// modelList is the body of GET /v1/models.
type modelList struct {
	Models []modelInfo `json:"models"`
}

type modelInfo struct {
	Name   string   `json:"name"`
	Labels []string `json:"labels"`
}

func (s *Server) handleModels(w http.ResponseWriter, r *http.Request) {
	list := modelList{Models: []modelInfo{}}
	for _, name := range s.names() {
		list.Models = append(list.Models, modelInfo{Name: name, Labels: s.model(name).labels})
	}
	writeJSON(w, http.StatusOK, list)
}

// handleClassify serves POST /v1/classify: the model is ?model=, else the
// first one served.
func (s *Server) handleClassify(w http.ResponseWriter, r *http.Request) {
	name := r.URL.Query().Get("model")
	if name == "" {
		if names := s.names(); len(names) > 0 {
			name = names[0]
		}
	}
	m := s.model(name)
	if m == nil {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no model named %q", name))
		return
	}
	s.simple(w, r, m)
}

// handlePredictions serves TorchServe's POST and PUT /predictions/{name}.
func (s *Server) handlePredictions(w http.ResponseWriter, r *http.Request) {
	m := s.lookup(w, r)
	if m == nil {
		return
	}
	s.simple(w, r, m)
}

// simple classifies the image of a raw body, or the file parts of a
// multipart form, and answers with predict's records.
func (s *Server) simple(w http.ResponseWriter, r *http.Request, m *served) {
	k := simpleTopK
	if v := r.URL.Query().Get("topk"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			fail(w, r, badRequest("topk must be a positive integer, got %q", v))
			return
		}
		k = n
	}
	images, multi, err := s.readImages(r)
	if err != nil {
		fail(w, r, err)
		return
	}
	logits, errs, err := s.classifyEach(r.Context(), m, images)
	if err != nil {
		fail(w, r, err)
		return
	}
	records := make([]classify.Record, len(images))
	ok := 0
	for i, img := range images {
		if errs[i] != nil {
			records[i] = classify.Failed(img.name, errs[i])
			continue
		}
		records[i] = classify.Record{File: img.name, Predictions: m.rank(logits[i:i+1], k)[0]}
		ok++
	}
	switch {
	case ok == 0:
		// Nothing classified: the request as a whole was bad.
		fail(w, r, errs[0])
	case multi:
		writeJSON(w, http.StatusOK, records)
	default:
		writeJSON(w, http.StatusOK, records[0])
	}
}

// readImages reads the raw body as one image, or the file parts of a
// multipart form; multi tells which.
func (s *Server) readImages(r *http.Request) (images []image, multi bool, err error) {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if !strings.HasPrefix(mediaType, "multipart/") {
		data, err := readBody(r)
		if err != nil {
			return nil, false, err
		}
		if len(data) == 0 {
			return nil, false, badRequest("empty request body: send an image, or a multipart form with file parts")
		}
		return []image{{name: rawName, data: data}}, false, nil
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, true, badRequest("multipart form: %v", err)
	}
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, true, formError(err)
		}
		if !filePart(p) {
			continue
		}
		if len(images) == s.opts.Queue {
			return nil, true, s.checkCount(len(images) + 1)
		}
		data, err := io.ReadAll(p)
		if err != nil {
			return nil, true, formError(err)
		}
		name := p.FileName()
		if name == "" {
			name = fmt.Sprintf("%s[%d]", p.FormName(), len(images))
		}
		images = append(images, image{name: name, data: data})
	}
	if len(images) == 0 {
		return nil, true, badRequest(`multipart form has no "file" parts`)
	}
	return images, true, nil
}

// formError keeps a body over the limit a 413 and makes anything else
// wrong with a form a 400.
func formError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return err
	}
	return badRequest("multipart form: %v", err)
}
