package server

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	goimage "image"
	"image/png"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"
)

// stalled replaces the tiny model's batcher with one that has no worker,
// so that queued images stay queued.
func stalled(t *testing.T, s *Server, queue int) *batcher {
	t.Helper()
	m := s.model(tinyName)
	m.batcher.close()
	opts := s.opts
	opts.Workers, opts.Queue = 0, queue
	m.batcher = newBatcher(tinyName, m.classifier, &opts, s.metrics)
	return m.batcher
}

// TestQueueFull fills a model's queue and checks that the next request
// gets 503 with Retry-After at once, and that a client that leaves frees
// its place.
func TestQueueFull(t *testing.T) {
	s, url := newTestServer(t, Options{})
	b := stalled(t, s, 2)
	img := make([]float32, b.size)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			if _, err := b.infer(ctx, [][]float32{img}); !errors.Is(err, context.Canceled) {
				t.Errorf("queued image: %v, want context.Canceled", err)
			}
		})
	}
	waitFor(t, func() bool { return b.pending.Load() == 2 })

	status, body, header := do(t, "POST", url+"/predictions/tiny", "image/png", readPhoto(t, "coffee.png"))
	wantError(t, "queue full", status, body, http.StatusServiceUnavailable, "queue is full")
	if header.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	cancel()
	wg.Wait()
	if got := b.pending.Load(); got != 2 {
		t.Fatalf("pending %d", got)
	}
}

// TestCancelledClientDropped checks that an image whose client left while
// it waited for its batch is not run: the worker waits up to MaxDelay for
// a second image, and by then the first client has gone.
func TestCancelledClientDropped(t *testing.T) {
	// Generous margins: the image must be decoded and queued before its
	// client leaves, on a loaded machine under the race detector.
	_, url := newTestServer(t, Options{MaxBatch: 4, MaxDelay: 6 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var small bytes.Buffer // quick to decode
	if err := png.Encode(&small, goimage.NewGray(goimage.Rect(0, 0, 16, 16))); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/predictions/tiny", &small)
	if _, err := http.DefaultClient.Do(req); err == nil {
		t.Fatal("the request finished before its client left")
	}
	// The batch closes at MaxDelay with nothing left to run.
	waitFor(t, func() bool { return metricValue(t, url, `res2net_images_dropped_total{model="tiny"}`) == 1 })
	if v := metricValue(t, url, `res2net_images_classified_total{model="tiny"}`); v > 0 {
		t.Errorf("%v images classified, want none", v)
	}
	if v := metricValue(t, url, `res2net_http_requests_total{code="499",endpoint="POST /predictions/{name}"}`); v != 1 {
		t.Errorf("%v requests logged as client-closed, want 1", v)
	}
}

// TestBatching sends concurrent requests and checks that they shared
// forward passes, and that the answers match the ones sent alone, with one
// worker and with two sharing the network.
func TestBatching(t *testing.T) {
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d workers", workers), func(t *testing.T) { testBatching(t, workers) })
	}
}

func testBatching(t *testing.T, workers int) {
	_, url := newTestServer(t, Options{MaxBatch: 8, MaxDelay: 200 * time.Millisecond, Workers: workers})
	ps := photos(t)
	const n = 8
	var wg sync.WaitGroup
	bodies := make([][]byte, n)
	for i := range n {
		wg.Go(func() {
			status, body, _ := do(t, "POST", url+"/predictions/tiny?topk=10", "", readPhoto(t, ps[i%len(ps)].File))
			if status != 200 {
				t.Errorf("request %d: %d %s", i, status, body)
			}
			bodies[i] = body
		})
	}
	wg.Wait()
	passes := metricValue(t, url, `res2net_batch_size_count{model="tiny"}`)
	images := metricValue(t, url, `res2net_batch_size_sum{model="tiny"}`)
	if images != n || passes >= n {
		t.Errorf("%v images in %v forward passes; want %d images in fewer passes", images, passes, n)
	}
	// Batched or alone, each image gets the same answer.
	for i := range n {
		_, alone, _ := do(t, "POST", url+"/predictions/tiny?topk=10", "", readPhoto(t, ps[i%len(ps)].File))
		if !bytes.Equal(alone, bodies[i]) {
			t.Errorf("%s: batched answer\n%s\ndiffers from the one alone\n%s", ps[i%len(ps)].File, bodies[i], alone)
		}
	}
}

// TestMetrics checks the series /metrics exposes after some traffic.
func TestMetrics(t *testing.T) {
	s, url := newTestServer(t, Options{MaxBatch: 4})
	s.metrics.loadTime.WithLabelValues(tinyName).Set(1.5)
	do(t, "POST", url+"/predictions/tiny", "", readPhoto(t, "coffee.png"))
	do(t, "POST", url+"/predictions/tiny", "", []byte("garbage"))
	do(t, "GET", url+"/v2/models/nope", "", nil)
	do(t, "GET", url+"/no/such/page", "", nil)
	want := map[string]float64{
		`res2net_http_requests_total{code="200",endpoint="POST /predictions/{name}"}`:      1,
		`res2net_http_requests_total{code="400",endpoint="POST /predictions/{name}"}`:      1,
		`res2net_http_requests_total{code="404",endpoint="GET /v2/models/{name}"}`:         1,
		`res2net_http_requests_total{code="404",endpoint="other"}`:                         1,
		`res2net_http_request_duration_seconds_count{endpoint="POST /predictions/{name}"}`: 2,
		`res2net_images_classified_total{model="tiny"}`:                                    1,
		`res2net_batch_size_bucket{model="tiny",le="1"}`:                                   1,
		`res2net_batch_size_bucket{model="tiny",le="4"}`:                                   1,
		`res2net_queue_depth{model="tiny"}`:                                                0,
		`res2net_model_load_seconds{model="tiny"}`:                                         1.5,
		`res2net_forward_duration_seconds_count{model="tiny"}`:                             1,
	}
	for series, v := range want {
		if got := metricValue(t, url, series); got != v {
			t.Errorf("%s = %v, want %v", series, got, v)
		}
	}
}

// metricValue scrapes /metrics and returns one series' value (-1 when it
// is missing).
func metricValue(t testing.TB, url, series string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(b)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitFor polls cond for up to 10 seconds.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not met in 10 s")
}
