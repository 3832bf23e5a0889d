package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/res2net/res2net/pkg/registry"
	"github.com/res2net/res2net/pkg/server"
	"github.com/spf13/cobra"
)

type serveOptions struct {
	IO         *ioStreams
	Models     []string // registry names
	Weights    []string // checkpoint files
	Names      []string // names of the models above, in order: --model ones first
	Transform  transformFlags
	Addr       string
	Threads    int
	Workers    int
	MaxBatch   int
	MaxDelay   time.Duration
	MaxBody    byteSize
	BodyMemory byteSize
	Queue      int
	Offline    bool
	Quiet      bool
	LogFormat  string

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration
	DrainDelay        time.Duration
	ShutdownTimeout   time.Duration

	// Listening, when set, is called with the bound address once the
	// server accepts connections (before the models are loaded).
	Listening func(addr string)
}

// Server defaults that are not the library's.
const (
	defaultAddr      = "127.0.0.1:8080"
	defaultMaxPixels = 40_000_000 // 160 MB decoded: several such decodes can run at once
)

func newServeCmd(io *ioStreams) *cobra.Command {
	opts := &serveOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve models over HTTP (KServe v2, TorchServe, a web page)",
		Long: `Serve the models over HTTP: the Open Inference Protocol v2 (REST) under /v2,
POST /v1/classify, TorchServe's POST|PUT /predictions/{name}, Prometheus
metrics at /metrics and a page to try a model at /. Concurrent requests are
merged into batches of up to --max-batch images. The server listens at once
and reports ready (GET /v2/health/ready) when every model is loaded; on
SIGTERM or SIGINT it stops accepting, finishes the requests in flight and
exits 0.

A model's name is --name (the i-th --name names the i-th model, --model ones
first), else its registry name, else its file's base name.`,
		Example: `  res2net serve --addr 127.0.0.1:8080
  res2net serve --weights tiny.pth --name tiny --max-batch 16 --log-format json
  curl -T photo.jpg http://127.0.0.1:8080/predictions/res2net50_26w_4s`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runServe(cmd.Context(), opts)
		},
	}
	opts.addFlags(cmd)
	return cmd
}

// addFlags registers the flags, setting o to their defaults.
func (o *serveOptions) addFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringArrayVarP(&o.Models, "model", "m", nil, "published model to serve, by registry name (repeatable)")
	f.StringArrayVarP(&o.Weights, "weights", "w", nil, "checkpoint file to serve (repeatable)")
	f.StringArrayVar(&o.Names, "name", nil, "name of the i-th model (repeatable)")
	f.StringVar(&o.Addr, "addr", defaultAddr, "address to listen on")
	f.IntVarP(&o.Threads, "threads", "t", 0, "CPU threads of each forward pass (0: all CPUs over the workers)")
	f.IntVar(&o.Workers, "workers", 1, "forward passes one model runs at once, sharing its weights")
	f.IntVar(&o.MaxBatch, "max-batch", server.DefaultMaxBatch, "most images in one forward pass")
	f.DurationVar(&o.MaxDelay, "max-delay", server.DefaultMaxDelay, "longest wait for a batch to fill")
	o.MaxBody = server.DefaultMaxBody
	f.Var(&o.MaxBody, "max-body", "largest request body (413 beyond it), e.g. 32MiB")
	f.Var(&o.BodyMemory, "body-memory", "most bytes of request bodies held at once (503 beyond; default 16 x --max-body)")
	f.IntVar(&o.Queue, "queue", server.DefaultQueue, "most images waiting per model (503 beyond it)")
	o.Transform.add(cmd)
	// Lower than predict's: several decodes run at once in a server.
	o.Transform.MaxPixels = defaultMaxPixels
	f.Lookup("max-pixels").DefValue = strconv.Itoa(defaultMaxPixels)
	f.BoolVar(&o.Offline, "offline", false, "never download; fail if a checkpoint is not cached")
	f.BoolVarP(&o.Quiet, "quiet", "q", false, "no download notice or progress bar")
	f.StringVar(&o.LogFormat, "log-format", "text", "request log format on stderr: text or json")
	f.DurationVar(&o.ReadHeaderTimeout, "read-header-timeout", 5*time.Second, "longest time to read a request's headers")
	f.DurationVar(&o.ReadTimeout, "read-timeout", 30*time.Second, "longest time to read a whole request")
	f.DurationVar(&o.WriteTimeout, "write-timeout", 60*time.Second, "longest time from the end of the headers to the end of the response")
	f.DurationVar(&o.IdleTimeout, "idle-timeout", 120*time.Second, "longest wait for the next request on a kept-alive connection")
	f.DurationVar(&o.DrainDelay, "drain-delay", 0, "on SIGTERM, keep serving this long after readiness turns false, for load balancers to notice")
	f.DurationVar(&o.ShutdownTimeout, "shutdown-timeout", 30*time.Second, "longest wait for requests in flight on SIGTERM")
}

func (o *serveOptions) validate() error {
	switch {
	case o.Threads < 0:
		return usageErrorf("--threads must be at least 0 (0: all CPUs), got %d", o.Threads)
	case o.Workers < 1:
		return usageErrorf("--workers must be at least 1, got %d", o.Workers)
	case o.MaxBatch < 1:
		return usageErrorf("--max-batch must be at least 1, got %d", o.MaxBatch)
	case o.MaxDelay <= 0:
		return usageErrorf("--max-delay must be positive, got %v", o.MaxDelay)
	case o.MaxBody < 1:
		return usageErrorf("--max-body must be at least 1 byte, got %d", o.MaxBody)
	case o.Queue < 1:
		return usageErrorf("--queue must be at least 1, got %d", o.Queue)
	case o.LogFormat != "text" && o.LogFormat != "json":
		return usageErrorf("--log-format must be text or json, got %q", o.LogFormat)
	case len(o.Names) > max(len(o.Models)+len(o.Weights), 1):
		return usageErrorf("%d --name flags for %d models", len(o.Names), max(len(o.Models)+len(o.Weights), 1))
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--read-header-timeout", o.ReadHeaderTimeout}, {"--read-timeout", o.ReadTimeout}, {"--write-timeout", o.WriteTimeout},
		{"--idle-timeout", o.IdleTimeout}, {"--shutdown-timeout", o.ShutdownTimeout}} {
		if d.v <= 0 {
			return usageErrorf("%s must be positive, got %v", d.flag, d.v)
		}
	}
	if o.DrainDelay < 0 {
		return usageErrorf("--drain-delay must not be negative, got %v", o.DrainDelay)
	}
	if err := o.Transform.validate(); err != nil {
		return err
	}
	for _, name := range o.Models {
		if _, err := (&modelFlags{Model: name}).entry(); err != nil {
			return err
		}
	}
	return nil
}

// modelSpec is one model to serve: its name and what to load.
type modelSpec struct {
	name string
	load modelFlags
}

// specs lists the models to serve, named as the help says. With neither
// --model nor --weights it serves the published model.
func (o *serveOptions) specs() ([]modelSpec, error) {
	var out []modelSpec
	for _, m := range o.Models {
		out = append(out, modelSpec{name: m, load: modelFlags{Model: m, Offline: o.Offline}})
	}
	for _, p := range o.Weights {
		out = append(out, modelSpec{name: strings.TrimSuffix(filepath.Base(p), filepath.Ext(p)), load: modelFlags{Weights: p, Offline: o.Offline}})
	}
	if len(out) == 0 {
		out = append(out, modelSpec{name: registry.Default.Name, load: modelFlags{Offline: o.Offline}})
	}
	for i, n := range o.Names {
		out[i].name = n
	}
	seen := map[string]bool{}
	for _, s := range out {
		if s.name == "" || strings.ContainsAny(s.name, "/?#% ") {
			return nil, usageErrorf("model name %q: use letters, digits, '.', '-' or '_'", s.name)
		}
		if seen[s.name] {
			return nil, usageErrorf("two models are named %q (use --name)", s.name)
		}
		seen[s.name] = true
	}
	return out, nil
}

func runServe(ctx context.Context, opts *serveOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	specs, err := opts.specs()
	if err != nil {
		return err
	}
	var handler slog.Handler = slog.NewTextHandler(opts.IO.ErrOut, nil)
	if opts.LogFormat == "json" {
		handler = slog.NewJSONHandler(opts.IO.ErrOut, nil)
	}
	logger := slog.New(handler)

	srv := server.New(server.Options{
		MaxBatch:   opts.MaxBatch,
		MaxDelay:   opts.MaxDelay,
		Workers:    opts.Workers,
		Threads:    opts.Threads,
		Queue:      opts.Queue,
		MaxBody:    int64(opts.MaxBody),
		BodyMemory: int64(opts.BodyMemory),
		Logger:     logger,
		Version:    versionString(),
	})
	defer srv.Close()
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: opts.ReadHeaderTimeout,
		ReadTimeout:       opts.ReadTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       opts.IdleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(handler, slog.LevelWarn),
	}
	// Listening before loading lets the liveness probe pass while a large
	// checkpoint loads; readiness waits for the models.
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	served := make(chan error, 1)
	go func() { served <- httpSrv.Serve(ln) }()
	addr := ln.Addr().String()
	logger.Info("listening", "addr", addr)
	if opts.Listening != nil {
		opts.Listening(addr)
	}

	for _, spec := range specs {
		start := time.Now()
		c, err := loadClassifier(ctx, opts.IO, &spec.load, opts.Transform.options, opts.Quiet)
		if err == nil {
			err = srv.AddModel(spec.name, c, time.Since(start))
		}
		if err != nil {
			httpSrv.Close()
			return fmt.Errorf("model %s: %w", spec.name, err)
		}
		logger.Info("model loaded", "model", spec.name, "classes", len(c.Labels()), "seconds", time.Since(start).Seconds())
	}
	srv.SetReady(true)
	logger.Info("ready", "addr", addr, "models", len(specs))

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	// Not ready first, so that load balancers stop sending (they poll, so
	// keep serving for --drain-delay); Shutdown then closes the listener
	// and waits for the requests in flight.
	srv.SetReady(false)
	logger.Info("shutting down", "drain_delay", opts.DrainDelay.String(), "timeout", opts.ShutdownTimeout.String())
	time.Sleep(opts.DrainDelay)
	sctx, cancel := context.WithTimeout(context.Background(), opts.ShutdownTimeout)
	defer cancel()
	if err := httpSrv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	logger.Info("stopped")
	return nil
}

// maxHeaderBytes bounds request headers; no endpoint needs more than a few
// hundred bytes of them.
const maxHeaderBytes = 64 << 10

// versionString is the version the server reports.
func versionString() string {
	if version != "" {
		return version
	}
	return "devel"
}

// byteSize is a flag value of bytes with an optional binary or decimal
// suffix: 512, 64KiB, 32MiB, 1GiB, 10MB.
type byteSize int64

var byteSuffixes = []struct {
	suffix string
	scale  int64
}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9}, {"B", 1}}

func (b *byteSize) String() string {
	v := int64(*b)
	for i := 2; i >= 0; i-- { // GiB, MiB, KiB: the largest that divides
		if s := byteSuffixes[i]; v > 0 && v%s.scale == 0 {
			return strconv.FormatInt(v/s.scale, 10) + s.suffix
		}
	}
	return strconv.FormatInt(v, 10)
}

func (b *byteSize) Set(s string) error {
	scale := int64(1)
	num := s
	for _, suf := range byteSuffixes {
		if strings.HasSuffix(s, suf.suffix) {
			num, scale = strings.TrimSuffix(s, suf.suffix), suf.scale
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
	if err != nil || n < 0 || n > (1<<62)/scale {
		return errors.New("want a size such as 1048576, 64KiB or 32MiB")
	}
	*b = byteSize(n * scale)
	return nil
}

func (b *byteSize) Type() string { return "size" }
