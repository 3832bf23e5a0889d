package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

// startServe runs the serve command in-process on a loopback port and
// returns its base URL and a function that stops it and returns its error.
func startServe(t *testing.T, opts *serveOptions) (string, func() error) {
	t.Helper()
	t.Setenv("RES2NET_HOME", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan string, 1)
	opts.Addr = "127.0.0.1:0"
	opts.Listening = func(a string) {
		// Called before the models load: live, not ready.
		for path, want := range map[string]int{"/v2/health/live": 200, "/v2/health/ready": 503} {
			resp, err := http.Get("http://" + a + path)
			if err != nil {
				t.Error(err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != want {
				t.Errorf("GET %s while loading: %d, want %d", path, resp.StatusCode, want)
			}
		}
		addr <- a
	}
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, opts) }()
	var url string
	select {
	case a := <-addr:
		url = "http://" + a
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			return fmt.Errorf("serve did not stop")
		}
	}
	t.Cleanup(func() { stop() })
	waitReady(t, url)
	return url, stop
}

// waitReady polls the readiness endpoint until it answers 200.
func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/v2/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

// defaultServeOptions are the flags' defaults.
func defaultServeOptions(ios *ioStreams) *serveOptions {
	opts := &serveOptions{IO: ios}
	opts.addFlags(&cobra.Command{})
	return opts
}

func v2Request(t *testing.T, files ...string) []byte {
	t.Helper()
	var data []string
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(photosDir, f))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, base64.StdEncoding.EncodeToString(b))
	}
	b, err := json.Marshal(map[string]any{
		"inputs": []map[string]any{{"name": "image", "datatype": "BYTES", "shape": []int{len(data)}, "data": data}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestServe(t *testing.T) {
	ios, _, errOut := testIO("")
	opts := defaultServeOptions(ios)
	opts.Weights = []string{tinyWeights, tinyWeights}
	opts.Names = []string{"a"}
	opts.LogFormat = "json"
	url, stop := startServe(t, opts)

	// Two models: the named one and the one named after its file.
	for _, name := range []string{"a", "tiny_legacy"} {
		resp, err := http.Post(url+"/v2/models/"+name+"/infer", "application/json", bytes.NewReader(v2Request(t, "coffee.png")))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"name":"logits"`) {
			t.Errorf("infer %s: %d %s", name, resp.StatusCode, body)
		}
	}
	// The simple endpoints print what predict --format json prints.
	photo := filepath.Join(photosDir, "chelsea.gif")
	pios, pout, perr := testIO("")
	if code := execute(context.Background(), pios, []string{"predict", "--weights", tinyWeights, "--format", "json", photo}); code != 0 {
		t.Fatalf("predict: %d %s", code, perr)
	}
	want := strings.Replace(pout.String(), `"file":"`+photo+`"`, `"file":"upload"`, 1)
	img, err := os.ReadFile(photo)
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/v1/classify?model=a", "/predictions/tiny_legacy"} {
		req, _ := http.NewRequest("PUT", url+path, bytes.NewReader(img))
		if strings.HasPrefix(path, "/v1") {
			req.Method = "POST"
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(got) != want {
			t.Errorf("%s: %d\n%s\npredict --format json:\n%s", path, resp.StatusCode, got, want)
		}
	}
	if err := stop(); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// One JSON log line per request, no image data.
	var requests int
	for _, line := range strings.Split(strings.TrimSpace(errOut.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if rec["msg"] == "request" && rec["endpoint"] == "POST /v2/models/{name}/infer" {
			requests++
		}
		if len(line) > 1000 {
			t.Errorf("log line of %d bytes: image data in the log?", len(line))
		}
	}
	if requests != 2 {
		t.Errorf("%d infer log lines, want 2:\n%s", requests, errOut)
	}
}

func TestServeUsage(t *testing.T) {
	t.Setenv("RES2NET_HOME", t.TempDir())
	tests := []struct {
		name string
		args []string
		code int
		err  string
	}{
		{"bad batch", []string{"serve", "--max-batch", "0"}, 2, "--max-batch"},
		{"bad body", []string{"serve", "--max-body", "lots"}, 2, "32MiB"},
		{"bad log format", []string{"serve", "--log-format", "xml"}, 2, "--log-format"},
		{"bad drain delay", []string{"serve", "--drain-delay", "-1s"}, 2, "--drain-delay"},
		{"bad workers", []string{"serve", "--workers", "0"}, 2, "--workers"},
		{"bad timeout", []string{"serve", "--read-timeout", "0s"}, 2, "--read-timeout"},
		{"unknown model", []string{"serve", "--model", "resnet"}, 2, `unknown model "resnet"`},
		{"too many names", []string{"serve", "--weights", tinyWeights, "--name", "a", "--name", "b"}, 2, "2 --name flags for 1 models"},
		{"same name", []string{"serve", "--weights", tinyWeights, "--weights", tinyWeights}, 2, `two models are named "tiny_legacy"`},
		{"bad name", []string{"serve", "--weights", tinyWeights, "--name", "a/b"}, 2, `model name "a/b"`},
		{"offline", []string{"serve", "--offline", "--addr", "127.0.0.1:0"}, 1, "no cached checkpoint"},
		{"missing weights", []string{"serve", "--weights", "nope.pth", "--addr", "127.0.0.1:0"}, 1, "nope.pth"},
		{"bad addr", []string{"serve", "--weights", tinyWeights, "--addr", "127.0.0.1:99999"}, 1, "listen"},
	}
	for _, tt := range tests {
		ios, _, errOut := testIO("")
		if code := execute(context.Background(), ios, tt.args); code != tt.code || !strings.Contains(errOut.String(), tt.err) {
			t.Errorf("%s: exit %d, want %d with %q; stderr:\n%s", tt.name, code, tt.code, tt.err, errOut)
		}
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		str  string
	}{
		{"512", 512, "512"}, {"64KiB", 64 << 10, "64KiB"}, {"32MiB", 32 << 20, "32MiB"},
		{"2GiB", 2 << 30, "2GiB"}, {"10MB", 10e6, "10000000"}, {"1536KiB", 1536 << 10, "1536KiB"},
	}
	for _, tt := range tests {
		var b byteSize
		if err := b.Set(tt.in); err != nil || int64(b) != tt.want || b.String() != tt.str {
			t.Errorf("Set(%q) = %d (%s), %v; want %d (%s)", tt.in, b, b.String(), err, tt.want, tt.str)
		}
	}
	for _, bad := range []string{"", "MiB", "-1", "1.5MiB", "99999999999GiB"} {
		var b byteSize
		if err := b.Set(bad); err == nil {
			t.Errorf("Set(%q) accepted", bad)
		}
	}
}

// TestBinaryServe runs the built binary on a loopback port, keeps requests
// in flight while it gets SIGTERM, and checks that every one completes with
// 200 and that the process exits 0.
func TestBinaryServe(t *testing.T) {
	bin := binary(t)
	cmd := exec.Command(bin, "serve", "--weights", tinyWeights, "--name", "tiny", "--addr", "127.0.0.1:0",
		"--max-batch", "16", "--max-delay", "8s", "--threads", "1")
	cmd.Env = append(os.Environ(), "RES2NET_HOME="+t.TempDir())
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addrRE := regexp.MustCompile(`msg=listening addr=(\S+)`)
	lines := bufio.NewScanner(stderr)
	var url string
	var log strings.Builder
	for lines.Scan() {
		log.WriteString(lines.Text() + "\n")
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			url = "http://" + m[1]
			break
		}
	}
	if url == "" {
		t.Fatalf("no listening line:\n%s", log.String())
	}
	logDone := make(chan struct{})
	go func() {
		for lines.Scan() {
			log.WriteString(lines.Text() + "\n")
		}
		close(logDone)
	}()
	waitReady(t, url)

	img, err := os.ReadFile(filepath.Join(photosDir, "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	for _, ep := range []struct {
		method, path string
		body         []byte
		want         string
	}{
		{"GET", "/v2/health/live", nil, ""},
		{"GET", "/v2", nil, `"name":"res2net"`},
		{"GET", "/v2/models/tiny", nil, `"platform":"res2net_go"`},
		{"GET", "/v2/models/tiny/ready", nil, ""},
		{"POST", "/v2/models/tiny/versions/1/infer", v2Request(t, "coffee.png"), `"name":"logits"`},
		{"POST", "/v1/classify?topk=1", img, `"rank":1`},
		{"PUT", "/predictions/tiny", img, `"rank":5`},
		{"GET", "/v1/models", nil, `"name":"tiny"`},
		{"GET", "/", nil, "<title>res2net</title>"},
		{"GET", "/static/app.js", nil, "v1/classify"},
		{"GET", "/metrics", nil, "res2net_model_load_seconds"},
	} {
		req, _ := http.NewRequest(ep.method, url+ep.path, bytes.NewReader(ep.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), ep.want) {
			t.Errorf("%s %s: %d %.200s", ep.method, ep.path, resp.StatusCode, b)
		}
	}

	// Requests in flight at SIGTERM: with --max-batch above their number
	// and a long --max-delay they all wait in the queue for the batch to
	// fill; the signal lands once the server counts them in flight. Fresh
	// connections, so none is an idle one Shutdown closes.
	const inFlight = 12
	body := v2Request(t, "astronaut.jpg")
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	var wg sync.WaitGroup
	codes := make([]int, inFlight)
	errs := make([]error, inFlight)
	for i := range inFlight {
		wg.Go(func() {
			resp, err := client.Post(url+"/v2/models/tiny/infer", "application/json", bytes.NewReader(body))
			if err != nil {
				errs[i] = err
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			codes[i] = resp.StatusCode
		})
	}
	waitMetric(t, client, url, "res2net_http_requests_in_flight", inFlight+1) // +1: the scrape itself
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i := range inFlight {
		if errs[i] != nil || codes[i] != 200 {
			t.Errorf("request %d in flight at SIGTERM: status %d, error %v", i, codes[i], errs[i])
		}
	}
	err = cmd.Wait()
	<-logDone
	if err != nil {
		t.Errorf("exit after SIGTERM: %v\n%s", err, log.String())
	}
	if !strings.Contains(log.String(), "msg=stopped") {
		t.Errorf("no clean stop in the log:\n%s", log.String())
	}
}

// waitMetric polls /metrics until the unlabelled sample name reaches want.
func waitMetric(t *testing.T, client *http.Client, url, name string, want float64) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	deadline := time.Now().Add(20 * time.Second)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(url + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := re.FindSubmatch(b); m != nil {
			last = string(m[1])
			var v float64
			if _, err := fmt.Sscan(last, &v); err == nil && v >= want {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s stayed at %s, want %v", name, last, want)
}
