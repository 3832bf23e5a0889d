package main

import (
	"bytes"
	"context"
	bin "encoding/binary"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/checkpoint"
	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/model"
)

// tinyPredict returns predict's options for the tiny checkpoint, as the
// flags' defaults give them.
func tinyPredict(ios *ioStreams, format string, inputs ...string) *predictOptions {
	return &predictOptions{IO: ios, Inputs: inputs, TopK: 1, Format: format,
		Net: netFlags{Model: modelFlags{Weights: tinyWeights}, Run: runFlags{BatchSize: 4, Threads: 1}}}
}

// photoFolder makes a folder of n copies of a test photo, named 000.png...
func photoFolder(t *testing.T, n int) (string, []string) {
	t.Helper()
	img, err := os.ReadFile(filepath.Join(photosDir, "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var names []string
	for i := range n {
		p := filepath.Join(dir, fmt.Sprintf("%03d.png", i))
		if err := os.WriteFile(p, img, 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, p)
	}
	return dir, names
}

// jsonRecords decodes JSON-lines output.
func jsonRecords(t *testing.T, data []byte) []classify.Record {
	t.Helper()
	var out []classify.Record
	dec := json.NewDecoder(bytes.NewReader(data))
	for dec.More() {
		var r classify.Record
		if err := dec.Decode(&r); err != nil {
			t.Fatalf("%v in\n%s", err, data)
		}
		out = append(out, r)
	}
	return out
}

func recordFiles(recs []classify.Record) []string {
	var files []string
	for _, r := range recs {
		files = append(files, r.File)
	}
	return files
}

// TestPredictFailedRecords: a failed input is a JSON record with its error,
// in input order, and the run exits 1.
func TestPredictFailedRecords(t *testing.T) {
	good := filepath.Join(photosDir, "coffee.png")
	missing := filepath.Join(t.TempDir(), "missing.jpg")
	ios, out, errOut := testIO("")
	err := runPredict(context.Background(), tinyPredict(ios, "json", good, missing, good))
	if err == nil {
		t.Fatal("succeeded with a missing file")
	}
	recs := jsonRecords(t, out.Bytes())
	if got := recordFiles(recs); !slices.Equal(got, []string{good, missing, good}) {
		t.Fatalf("records for %v", got)
	}
	if recs[1].Error == "" || recs[1].Predictions != nil || !strings.Contains(recs[1].Error, "no such file") {
		t.Errorf("missing file's record %+v", recs[1])
	}
	if !strings.Contains(errOut.String(), missing) {
		t.Errorf("stderr does not name %s: %s", missing, errOut)
	}
}

// TestPredictOnlyBadInputs: when no input can be read, the run fails before
// loading (or downloading) anything, naming the file.
func TestPredictOnlyBadInputs(t *testing.T) {
	home := t.TempDir()
	t.Setenv("RES2NET_HOME", home)
	ios, _, errOut := testIO("")
	opts := tinyPredict(ios, "text", "/nonexistent.jpg")
	opts.Net.Model.Weights = "" // the default checkpoint, not cached: would be downloaded
	code := execute(context.Background(), ios, []string{"predict", "/nonexistent.jpg"})
	if code != 1 || !strings.Contains(errOut.String(), "/nonexistent.jpg") || strings.Contains(errOut.String(), "download") {
		t.Errorf("exit %d, stderr %q; want 1 naming the file, no download", code, errOut)
	}
	if entries, _ := os.ReadDir(home); len(entries) != 0 {
		t.Errorf("the cache has %d entries; nothing should be fetched", len(entries))
	}
}

// TestPredictOutputFile: -o picks the format from the extension unless
// --format says, writes nothing to stdout, replaces the file whole and
// leaves no temporary file.
func TestPredictOutputFile(t *testing.T) {
	photo := filepath.Join(photosDir, "coffee.png")
	tests := []struct {
		name, format, want string
	}{
		{"results.jsonl", "", `{"file":`},
		{"results.csv", "", "file,rank,index,label,probability,logit,error\n"},
		{"results.txt", "", photo + "\n  1  "},
		{"results.out", "json", `{"file":`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, tt.name)
			if err := os.WriteFile(path, []byte(strings.Repeat("old results\n", 1000)), 0o644); err != nil {
				t.Fatal(err)
			}
			ios, out, errOut := testIO("")
			opts := tinyPredict(ios, tt.format, photo)
			opts.Output = path
			if err := runPredict(context.Background(), opts); err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(string(got), tt.want) || strings.Contains(string(got), "old results") || out.Len() != 0 {
				t.Errorf("file:\n%s\nstdout %q", got, out)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("%d files in the folder, want only the output", len(entries))
			}
		})
	}
}

// TestPredictShard: the shards of a folder are disjoint, cover it, keep
// input order and are the same on every run.
func TestPredictShard(t *testing.T) {
	dir, names := photoFolder(t, 7)
	var all []string
	for k := range 3 {
		ios, out, errOut := testIO("")
		opts := tinyPredict(ios, "json", dir)
		opts.Shard = fmt.Sprintf("%d/3", k)
		if err := runPredict(context.Background(), opts); err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		files := recordFiles(jsonRecords(t, out.Bytes()))
		if !slices.IsSorted(files) || len(files) != (7-k+2)/3 {
			t.Errorf("shard %d/3: %v", k, files)
		}
		all = append(all, files...)
	}
	slices.Sort(all)
	if !slices.Equal(all, names) {
		t.Errorf("shards cover %v, want %v", all, names)
	}
}

// TestPredictResume: --resume keeps the results already in -o's file (not
// classified again: a sentinel survives), retries its failures, classifies
// the rest, and each input appears once.
func TestPredictResume(t *testing.T) {
	for _, format := range []string{"json", "csv"} {
		t.Run(format, func(t *testing.T) {
			dir, names := photoFolder(t, 4)
			path := filepath.Join(t.TempDir(), "out."+format)
			var prev string
			if format == "json" {
				prev = fmt.Sprintf(`{"file":%q,"predictions":[{"rank":1,"index":0,"label":"sentinel","probability":1,"logit":1}]}`+"\n"+
					`{"file":%q,"error":"transient"}`+"\n", names[1], names[2])
			} else {
				prev = strings.Join(csvHeader, ",") + "\n" + names[1] + ",1,0,sentinel,1,1,\n" + names[2] + ",,,,,,transient\n"
			}
			if err := os.WriteFile(path, []byte(prev), 0o644); err != nil {
				t.Fatal(err)
			}
			ios, _, errOut := testIO("")
			opts := tinyPredict(ios, "", dir)
			opts.Output, opts.Resume = path, true
			if err := runPredict(context.Background(), opts); err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), "sentinel") || strings.Contains(string(data), "transient") {
				t.Errorf("output:\n%s", data)
			}
			var files []string
			if format == "json" {
				files = recordFiles(jsonRecords(t, data))
			} else {
				rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				for _, r := range rows[1:] {
					files = append(files, r[0])
				}
			}
			slices.Sort(files)
			if !slices.Equal(files, names) {
				t.Errorf("files %v, want each of %v once", files, names)
			}
			if !strings.Contains(errOut.String(), "1 of 4 inputs already in") {
				t.Errorf("stderr %q", errOut)
			}
		})
	}
}

func TestPredictFilesFrom(t *testing.T) {
	_, names := photoFolder(t, 3)
	list := strings.Join([]string{names[2], "", names[0], "  ", names[1]}, "\n") + "\n"
	listFile := filepath.Join(t.TempDir(), "list.txt")
	if err := os.WriteFile(listFile, []byte(list), 0o644); err != nil {
		t.Fatal(err)
	}
	want := []string{names[2], names[0], names[1]}
	for _, from := range []string{listFile, "-"} {
		ios, out, errOut := testIO(list)
		opts := tinyPredict(ios, "json")
		opts.FilesFrom = from
		if err := runPredict(context.Background(), opts); err != nil {
			t.Fatalf("%s: %v\n%s", from, err, errOut)
		}
		if got := recordFiles(jsonRecords(t, out.Bytes())); !slices.Equal(got, want) {
			t.Errorf("--files-from %s: %v, want %v", from, got, want)
		}
	}
}

// TestPredictProgress: on a terminal a run of several images shows its
// progress and a summary; not with --quiet, not when stderr is no terminal,
// not for a single image.
func TestPredictProgress(t *testing.T) {
	dir, _ := photoFolder(t, 6)
	tests := []struct {
		name  string
		tty   bool
		quiet bool
		args  []string
		want  bool
	}{
		{"terminal", true, false, []string{dir, "missing.png"}, true},
		{"quiet", true, true, []string{dir}, false},
		{"not a terminal", false, false, []string{dir}, false},
		{"one image", true, false, []string{filepath.Join(dir, "000.png")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ios, _, errOut := testIO("")
			ios.ErrTTY = tt.tty
			opts := tinyPredict(ios, "csv", tt.args...)
			opts.Net.Quiet = tt.quiet
			runPredict(context.Background(), opts)
			stderr := strings.ReplaceAll(errOut.String(), "res2net: missing.png: no such file or directory\n", "")
			if !tt.want {
				if stderr != "" {
					t.Errorf("stderr %q, want nothing", stderr)
				}
				return
			}
			for _, w := range []string{"/7, ", " img/", "6 classified, 1 failed, "} {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%q", w, stderr)
				}
			}
		})
	}
}

// TestPredictTextAligned: with ten ranks, the columns stay aligned.
func TestPredictTextAligned(t *testing.T) {
	ios, out, errOut := testIO("")
	opts := tinyPredict(ios, "text", filepath.Join(photosDir, "coffee.png"))
	opts.TopK = 10
	if err := runPredict(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")[1:]
	if len(lines) != 10 {
		t.Fatalf("%d rank lines:\n%s", len(lines), out)
	}
	for _, l := range lines {
		if len(l) != len(lines[0]) || strings.Index(l, "%") != strings.Index(lines[0], "%") {
			t.Errorf("misaligned:\n%s\n%s", lines[0], l)
		}
	}
}

// nanCheckpoint copies the tiny checkpoint with head.bias[0] set to NaN, so
// that every image's scores are NaN.
func nanCheckpoint(t *testing.T) string {
	t.Helper()
	ckpt, err := checkpoint.Load(tinyWeights)
	if err != nil {
		t.Fatal(err)
	}
	bias := ckpt.Tensors["head.bias"].Data
	pattern := make([]byte, 4*len(bias))
	for i, v := range bias {
		bin.LittleEndian.PutUint32(pattern[4*i:], math.Float32bits(v))
	}
	data, err := os.ReadFile(tinyWeights)
	if err != nil {
		t.Fatal(err)
	}
	at := bytes.Index(data, pattern)
	if at < 0 || bytes.Index(data[at+1:], pattern) >= 0 {
		t.Fatal("head.bias not found once in the checkpoint's bytes")
	}
	bin.LittleEndian.PutUint32(data[at:], math.Float32bits(float32(math.NaN())))
	path := filepath.Join(t.TempDir(), "nan.pth")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestPredictNonFinite: NaN scores never abort JSON: they are null, and
// the warning comes once for the run.
func TestPredictNonFinite(t *testing.T) {
	nan := nanCheckpoint(t)
	_, names := photoFolder(t, 3)
	for _, format := range []string{"json", "csv", "text"} {
		ios, out, errOut := testIO("")
		opts := tinyPredict(ios, format, names...)
		opts.Net.Model.Weights = nan
		opts.TopK = 2
		if err := runPredict(context.Background(), opts); err != nil {
			t.Fatalf("%s: %v\n%s", format, err, errOut)
		}
		if n := strings.Count(errOut.String(), "not finite"); n != 1 {
			t.Errorf("%s: %d warnings about scores, want 1:\n%s", format, n, errOut)
		}
		if format == "json" {
			recs := jsonRecords(t, out.Bytes())
			if len(recs) != 3 || !strings.Contains(out.String(), `"probability":null`) {
				t.Errorf("JSON:\n%s", out)
			}
		}
	}
}

// TestPredictFolderWalk: linked subfolders are followed, a link back up is
// not followed round, and files with the extension of an image format the
// decoder does not read are reported.
func TestPredictFolderWalk(t *testing.T) {
	other, _ := photoFolder(t, 2)
	dir := t.TempDir()
	img, err := os.ReadFile(filepath.Join(photosDir, "coffee.png"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{
		"a.png":       img,
		"sub/b.png":   img,
		"sub/x.heic":  []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"),
		"sub/y.txt":   []byte("not an image"),
		"sub/z.jfif2": img, // not an image extension
	} {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{"sub/loop": "..", "linked": other, "sub/dangling.png": "nowhere.png"} {
		if err := os.Symlink(target, filepath.Join(dir, link)); err != nil {
			t.Fatal(err)
		}
	}
	ios, out, errOut := testIO("")
	err = runPredict(context.Background(), tinyPredict(ios, "json", dir))
	if err == nil {
		t.Fatal("succeeded with unreadable files")
	}
	var got []string
	for _, r := range jsonRecords(t, out.Bytes()) {
		got = append(got, fmt.Sprintf("%s ok=%v", strings.TrimPrefix(r.File, dir+"/"), r.Error == ""))
	}
	want := []string{"a.png ok=true", "linked/000.png ok=true", "linked/001.png ok=true", "sub/b.png ok=true",
		"sub/dangling.png ok=false", "sub/x.heic ok=false"}
	if !slices.Equal(got, want) {
		t.Errorf("records\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(errOut.String(), "x.heic") {
		t.Errorf("stderr does not name x.heic:\n%s", errOut)
	}
}

// TestBenchTooLarge: a batch that cannot fit is refused before allocating,
// a clear error and no crash.
func TestBenchTooLarge(t *testing.T) {
	if _, ok := availableMemory(); !ok {
		t.Skip("available memory unknown here")
	}
	for _, args := range [][]string{{"-b", "100000"}, {"--size", "60000"}} {
		ios, _, errOut := testIO("")
		code := execute(context.Background(), ios, append([]string{"bench", "--weights", tinyWeights}, args...))
		if code != 1 || !strings.Contains(errOut.String(), "more than the") || !strings.Contains(errOut.String(), "available") {
			t.Errorf("bench %v: exit %d, stderr %q", args, code, errOut)
		}
	}
}

// TestBenchJSONRounded: times to the microsecond, rates to the hundredth.
func TestBenchJSONRounded(t *testing.T) {
	ios, out, errOut := testIO("")
	opts := &benchOptions{IO: ios, Iters: 2, Warmup: 0, Size: 32, Format: "json",
		Model: modelFlags{Weights: tinyWeights}, Run: runFlags{BatchSize: 1, Threads: 1}}
	if err := runBench(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var raw map[string]json.Number
	if err := json.Unmarshal(out.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	for key, decimals := range map[string]int{"median_ms_per_image": 3, "p90_ms_per_image": 3, "images_per_second": 2} {
		s := raw[key].String()
		if _, frac, ok := strings.Cut(s, "."); ok && len(frac) > decimals {
			t.Errorf("%s = %s: more than %d decimals", key, s, decimals)
		}
	}
	if raw["threads"].String() != "1" {
		t.Errorf("threads %s", raw["threads"])
	}
}

func TestParseShard(t *testing.T) {
	for _, tt := range []struct {
		in   string
		k, n int
		ok   bool
	}{
		{"", 0, 1, true}, {"0/1", 0, 1, true}, {"3/8", 3, 8, true},
		{"8/8", 0, 0, false}, {"-1/4", 0, 0, false}, {"1/0", 0, 0, false}, {"1", 0, 0, false}, {"a/b", 0, 0, false},
	} {
		k, n, err := parseShard(tt.in)
		if (err == nil) != tt.ok || k != tt.k || n != tt.n {
			t.Errorf("parseShard(%q) = %d, %d, %v", tt.in, k, n, err)
		}
	}
}

// TestPredictOutputKeptOnLoadFailure: a run that fails before any result
// (the checkpoint does not load) leaves -o's earlier file alone.
func TestPredictOutputKeptOnLoadFailure(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "results.jsonl")
	if err := os.WriteFile(path, []byte("earlier\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ios, _, _ := testIO("")
	opts := tinyPredict(ios, "", filepath.Join(photosDir, "coffee.png"))
	opts.Output, opts.Net.Model.Weights = path, filepath.Join(dir, "missing.pth")
	if err := runPredict(context.Background(), opts); err == nil {
		t.Fatal("succeeded without a checkpoint")
	}
	if data, _ := os.ReadFile(path); string(data) != "earlier\n" {
		t.Errorf("-o file now %q", data)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("%d files left in the folder", len(entries))
	}
}

// TestBenchLayers: --layers lists every conv of the network once per
// pass, grouped by shape, with a time and a rate for each shape.
func TestBenchLayers(t *testing.T) {
	ios, out, errOut := testIO("")
	opts := &benchOptions{IO: ios, Iters: 3, Warmup: 1, Size: 32, Format: "json", Layers: true,
		Model: modelFlags{Weights: tinyWeights}, Run: runFlags{BatchSize: 2, Threads: 2}}
	if err := runBench(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	var res benchResult
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	c, err := loadClassifier(context.Background(), ios, &modelFlags{Weights: tinyWeights}, (&transformFlags{}).options, true)
	if err != nil {
		t.Fatal(err)
	}
	convs := 0
	for _, l := range c.Config().Summary(32, 32) {
		if l.Type == model.TypeConv {
			convs++
		}
	}
	got := 0
	for _, l := range res.Layers {
		// Two groups of one image on a thread each: every conv twice.
		got += l.Convs
		if !strings.HasPrefix(l.Layer, "conv ") || l.MedianMS < 0 || l.GFLOPPerS < 0 {
			t.Errorf("layer %+v", l)
		}
	}
	if got != 2*convs {
		t.Errorf("%d convs per pass in %d layer shapes, want %d", got, len(res.Layers), 2*convs)
	}
}
