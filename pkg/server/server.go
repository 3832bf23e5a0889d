// Package server serves image classifiers over HTTP: the Open Inference
// Protocol v2 (REST) that KServe, Triton and Seldon speak, a simple
// /v1/classify endpoint, TorchServe's /predictions/{name}, Prometheus
// metrics and a page to try a model from a browser. Concurrent requests
// for one model are merged into batches (see Options.MaxBatch); every
// input is bounded.
package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/res2net/res2net/pkg/classify"
)

// Options configures a Server. The zero value of a field means its default.
type Options struct {
	// MaxBatch is the most images in one forward pass (default 8).
	MaxBatch int
	// MaxDelay is how long a worker waits for a batch to fill once it has
	// an image (default 5ms).
	MaxDelay time.Duration
	// Queue is the most images waiting per model; beyond it requests get
	// 503 with Retry-After (default 256).
	Queue int
	// MaxBody is the largest request body in bytes; beyond it requests get
	// 413 (default 32 MiB).
	MaxBody int64
	// BodyMemory bounds the bytes of request bodies held at once, counting
	// a body by its Content-Length, or MaxBody when it is chunked; beyond
	// it requests get 503 (default 16 MaxBody).
	BodyMemory int64
	// Workers is the number of forward passes one model runs at once, each
	// with its own run buffers over the shared weights (default 1: on few
	// cores one pass using every thread is fastest).
	Workers int
	// Threads is the CPU threads of each forward pass (default
	// GOMAXPROCS / Workers).
	Threads int
	// Decoders bounds the images decoded at once (default GOMAXPROCS).
	Decoders int
	// Logger receives one line per request (default: discard).
	Logger *slog.Logger
	// Version is reported by the server metadata endpoint.
	Version string
}

// Defaults of Options.
const (
	DefaultMaxBatch = 8
	DefaultMaxDelay = 5 * time.Millisecond
	DefaultQueue    = 256
	DefaultMaxBody  = 32 << 20
)

// bodyMemoryFactor is the default Options.BodyMemory in units of MaxBody.
const bodyMemoryFactor = 16

// retryAfter is the Retry-After (seconds) of a 503: a queue full at
// hundreds of images drains in about that long on two cores.
const retryAfter = "1"

// Server serves models over HTTP. Its handler is ready for requests from
// New on; models are added with AddModel and the server reports ready once
// SetReady(true) is called.
type Server struct {
	opts    Options
	metrics *metrics
	mux     *http.ServeMux
	ready   atomic.Bool
	decode  chan struct{} // a slot per concurrent decode
	bodies  atomic.Int64  // bytes of request bodies reserved, see Options.BodyMemory

	mu     sync.RWMutex
	models map[string]*served
	order  []string // model names in the order added
}

// served is one model and its batcher.
type served struct {
	name       string
	classifier *classify.Classifier
	labels     []string
	shape      []int
	batcher    *batcher
}

// New returns a server with no models, not ready.
func New(opts Options) *Server {
	if opts.MaxBatch < 1 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.MaxDelay <= 0 {
		opts.MaxDelay = DefaultMaxDelay
	}
	if opts.Queue < 1 {
		opts.Queue = DefaultQueue
	}
	if opts.MaxBody < 1 {
		opts.MaxBody = DefaultMaxBody
	}
	if opts.BodyMemory < 1 {
		opts.BodyMemory = bodyMemoryFactor * opts.MaxBody
	}
	if opts.Workers < 1 {
		opts.Workers = 1
	}
	if opts.Threads < 1 {
		opts.Threads = max(1, runtime.GOMAXPROCS(0)/opts.Workers)
	}
	if opts.Decoders < 1 {
		opts.Decoders = runtime.GOMAXPROCS(0)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts:    opts,
		metrics: newMetrics(opts.MaxBatch),
		mux:     http.NewServeMux(),
		decode:  make(chan struct{}, opts.Decoders),
		models:  map[string]*served{},
	}
	s.routes()
	return s
}

// AddModel serves c under name; load is how long loading it took (for the
// metrics). Names are unique. The transform must crop to a fixed size, so
// that images of any size can share a batch.
func (s *Server) AddModel(name string, c *classify.Classifier, load time.Duration) error {
	if name == "" {
		return errors.New("a model needs a name")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.models[name]; ok {
		return fmt.Errorf("two models are named %q (use --name)", name)
	}
	if c.Transform().Crop <= 0 {
		return fmt.Errorf("model %q: the transform must crop to a fixed size for images to share a batch", name)
	}
	s.models[name] = &served{
		name:       name,
		classifier: c,
		labels:     c.Labels(),
		shape:      c.InputShape(),
		batcher:    newBatcher(name, c, &s.opts, s.metrics),
	}
	s.order = append(s.order, name)
	s.metrics.loadTime.WithLabelValues(name).Set(load.Seconds())
	return nil
}

// SetReady sets what the readiness endpoints report: true once every model
// is loaded, false again when shutting down.
func (s *Server) SetReady(ready bool) { s.ready.Store(ready) }

// Handler returns the HTTP handler of every endpoint.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Close stops the batch workers after the images already queued. Call it
// once the HTTP server has stopped handing requests to Handler.
func (s *Server) Close() {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, m := range s.models {
		m.batcher.close()
	}
}

// model returns the model called name, or nil.
func (s *Server) model(name string) *served {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.models[name]
}

// names returns the models' names in the order they were added.
func (s *Server) names() []string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.order)
}

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /v2/health/live", s.handleLive)
	m.HandleFunc("GET /v2/health/ready", s.handleReady)
	m.HandleFunc("GET /v2", s.handleServerMetadata)
	m.HandleFunc("GET /v2/models/{name}", s.handleModelMetadata)
	m.HandleFunc("GET /v2/models/{name}/versions/{version}", s.handleModelMetadata)
	m.HandleFunc("GET /v2/models/{name}/ready", s.handleModelReady)
	m.HandleFunc("GET /v2/models/{name}/versions/{version}/ready", s.handleModelReady)
	m.HandleFunc("POST /v2/models/{name}/infer", s.handleInfer)
	m.HandleFunc("POST /v2/models/{name}/versions/{version}/infer", s.handleInfer)
	m.HandleFunc("GET /v1/models", s.handleModels)
	m.HandleFunc("POST /v1/classify", s.handleClassify)
	m.HandleFunc("POST /predictions/{name}", s.handlePredictions)
	m.HandleFunc("PUT /predictions/{name}", s.handlePredictions)
	m.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.registry, promhttp.HandlerOpts{}))
	index, static := s.pageHandlers()
	m.Handle("GET /{$}", index)
	m.Handle("GET /static/", static)
	m.HandleFunc("/", s.handleUnrouted)
}

// handleUnrouted answers what no route matches, in JSON as the other
// errors: 405 with Allow when the path exists for other methods, else 404.
func (s *Server) handleUnrouted(w http.ResponseWriter, r *http.Request) {
	var allow []string
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodPut} {
		probe := r.Clone(r.Context())
		probe.Method = method
		if _, pattern := s.mux.Handler(probe); pattern != "/" && pattern != "" {
			allow = append(allow, method)
		}
	}
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s %s: use %s", r.Method, r.URL.Path, strings.Join(allow, " or ")))
		return
	}
	writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s", r.Method, r.URL.Path))
}

// serveHTTP bounds the body, routes the request, and records its metrics
// and log line.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	s.metrics.inFlight.Inc()
	defer s.metrics.inFlight.Dec()
	rec := &recorder{ResponseWriter: w, status: http.StatusOK}
	if r.ContentLength > s.opts.MaxBody {
		// Refused before reading any of it; the connection closes rather
		// than draining the rest.
		w.Header().Set("Connection", "close")
		writeError(rec, http.StatusRequestEntityTooLarge,
			fmt.Sprintf("request body of %d bytes is over the limit of %d", r.ContentLength, s.opts.MaxBody))
		r.Pattern = "too large"
	} else if need := s.bodySize(r); need > 0 && s.bodies.Add(need) > s.opts.BodyMemory {
		s.bodies.Add(-need)
		writeError(rec, http.StatusServiceUnavailable, "too many request bodies in flight")
		r.Pattern = "busy"
	} else {
		if need > 0 {
			defer s.bodies.Add(-need)
		}
		// MaxBytesReader must wrap the server's own writer, which it tells
		// to close the connection when the limit is hit.
		r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxBody)
		s.mux.ServeHTTP(rec, r)
	}
	endpoint := r.Pattern
	if endpoint == "" || endpoint == "/" {
		endpoint = "other" // unrouted paths must not grow the label set
	}
	elapsed := time.Since(start)
	code := strconv.Itoa(rec.status)
	s.metrics.requests.WithLabelValues(endpoint, code).Inc()
	s.metrics.latency.WithLabelValues(endpoint).Observe(elapsed.Seconds())
	s.opts.Logger.LogAttrs(r.Context(), slog.LevelInfo, "request",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.String("endpoint", endpoint),
		slog.Int("status", rec.status),
		slog.Int64("bytes_in", max(r.ContentLength, 0)),
		slog.Int64("bytes_out", rec.bytes),
		slog.Float64("ms", float64(elapsed.Microseconds())/1e3),
		slog.String("remote", r.RemoteAddr),
	)
}

// bodySize is what a request's body may take in memory.
func (s *Server) bodySize(r *http.Request) int64 {
	if r.ContentLength < 0 {
		return s.opts.MaxBody // chunked: up to the limit
	}
	return r.ContentLength
}

// recorder remembers the status and size of a response.
type recorder struct {
	http.ResponseWriter
	status  int
	bytes   int64
	written bool
}

func (r *recorder) WriteHeader(code int) {
	if !r.written {
		r.status, r.written = code, true
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	r.written = true
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// errorBody is the protocol's error response.
type errorBody struct {
	Error string `json:"error"`
}

// writeJSON encodes v before writing anything, so that a value JSON cannot
// hold (a NaN logit) gives a 500 rather than a truncated 200.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(errorBody{Error: fmt.Sprintf("encoding the response: %v", err)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", retryAfter)
	}
	writeJSON(w, status, errorBody{Error: msg})
}

// httpError is an error with the status it answers with.
type httpError struct {
	status int
	err    error
}

func (e *httpError) Error() string { return e.err.Error() }
func (e *httpError) Unwrap() error { return e.err }

func badRequest(format string, a ...any) error {
	return &httpError{http.StatusBadRequest, fmt.Errorf(format, a...)}
}

// fail writes err with its status: an httpError's, 413 for a body over the
// limit, 503 for a full queue or a shutdown, and 500 otherwise. A request
// whose client has gone gets no answer worth writing.
func fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	var tooLarge *http.MaxBytesError
	switch {
	case r.Context().Err() != nil:
		// 499 in nginx's convention; only the log and metrics see it.
		w.WriteHeader(statusClientClosed)
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is over the limit of %d bytes", tooLarge.Limit))
	case errors.As(err, &he):
		writeError(w, he.status, he.Error())
	case errors.Is(err, errQueueFull), errors.Is(err, errClosed):
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// statusClientClosed marks requests whose client went away.
const statusClientClosed = 499

// readBody reads the whole (already bounded) request body.
func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, err
		}
		return nil, badRequest("reading the request body: %v", err)
	}
	return b, nil
}
