//go:build unix

package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPredictRefusesFIFOs: a FIFO given as an argument or found in a folder
// is refused at once with an error naming it, and the good files beside it
// are classified; nothing waits for a writer that never comes.
func TestPredictRefusesFIFOs(t *testing.T) {
	dir, names := photoFolder(t, 2)
	inFolder := filepath.Join(dir, "001b.jpg") // sorts between the photos
	argument := filepath.Join(t.TempDir(), "pipe.png")
	for _, p := range []string{inFolder, argument} {
		if err := syscall.Mkfifo(p, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ios, out, errOut := testIO("")
	done := make(chan error, 1)
	go func() { done <- runPredict(context.Background(), tinyPredict(ios, "json", dir, argument)) }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("succeeded with FIFOs")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("predict blocked on a FIFO")
	}
	recs := jsonRecords(t, out.Bytes())
	if got, want := recordFiles(recs), []string{names[0], names[1], inFolder, argument}; !slices.Equal(got, want) {
		t.Fatalf("records for %v, want %v", got, want)
	}
	for _, r := range recs[2:] {
		if !strings.Contains(r.Error, "named pipe (FIFO), not a regular file") {
			t.Errorf("%s: error %q", r.File, r.Error)
		}
	}
	if recs[0].Error != "" || recs[1].Error != "" {
		t.Errorf("good files failed: %+v", recs[:2])
	}
	if !strings.Contains(errOut.String(), argument) {
		t.Errorf("stderr does not name %s:\n%s", argument, errOut)
	}
}

// TestOpenImageRefusesSwappedFIFO: a file replaced by a FIFO after the
// folder walk is refused by the open itself, without blocking.
func TestOpenImageRefusesSwappedFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.jpg")
	if err := syscall.Mkfifo(p, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		f, err := openImage(p)
		if err == nil {
			f.Close()
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "FIFO") {
			t.Errorf("openImage: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("openImage blocked on a FIFO")
	}
}

// TestBinarySignals: SIGTERM and SIGINT end a run blocked on standard
// input with 143 and 130, and -o still gets what was done.
func TestBinarySignals(t *testing.T) {
	bin := binary(t)
	for _, tt := range []struct {
		sig  syscall.Signal
		code int
		msg  string
	}{
		{syscall.SIGTERM, 143, "terminated"},
		{syscall.SIGINT, 130, "interrupted"},
	} {
		t.Run(tt.sig.String(), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out.jsonl")
			cmd := exec.Command(bin, "predict", "--weights", tinyWeights, "-o", out,
				filepath.Join(photosDir, "coffee.png"), "-")
			cmd.Env = append(os.Environ(), "RES2NET_HOME="+t.TempDir())
			stdin, err := cmd.StdinPipe() // never written: the run blocks reading it
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the photo's record is in the temporary file: the
			// run is then blocked reading stdin.
			deadline := time.Now().Add(30 * time.Second)
			for !partWritten(filepath.Dir(out)) && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			start := time.Now()
			cmd.Process.Signal(tt.sig)
			waited := make(chan error, 1)
			go func() { waited <- cmd.Wait() }()
			select {
			case <-waited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 10 s after %v", tt.sig)
			}
			if code := cmd.ProcessState.ExitCode(); code != tt.code || !strings.Contains(stderr.String(), tt.msg) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), tt.code, tt.msg)
			}
			t.Logf("exited %v after the signal", time.Since(start).Round(time.Millisecond))
			if data, err := os.ReadFile(out); err != nil || !strings.Contains(string(data), "coffee.png") {
				t.Errorf("-o after the signal: %v\n%s", err, data)
			}
		})
	}
}

// partWritten reports whether dir holds a non-empty temporary -o file.
func partWritten(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if fi, err := e.Info(); err == nil && strings.HasSuffix(e.Name(), ".part") && fi.Size() > 0 {
			return true
		}
	}
	return false
}

// TestBinaryFIFOArgument runs the built command on a FIFO and a photo.
func TestBinaryFIFOArgument(t *testing.T) {
	bin := binary(t)
	fifo := filepath.Join(t.TempDir(), "fifo.jpg")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "predict", "--weights", tinyWeights, "--format", "csv", fifo, filepath.Join(photosDir, "coffee.png"))
	cmd.Env = append(os.Environ(), "RES2NET_HOME="+t.TempDir())
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(30*time.Second, func() { cmd.Process.Kill() })
	defer timer.Stop()
	cmd.Wait()
	rows, err := csv.NewReader(strings.NewReader(stdout.String())).ReadAll()
	if err != nil || len(rows) != 7 {
		t.Fatalf("%v: stdout\n%s", err, stdout.String())
	}
	if code := cmd.ProcessState.ExitCode(); code != 1 || rows[1][0] != fifo || rows[1][6] != fifo+": a named pipe (FIFO), not a regular file" ||
		!strings.HasSuffix(rows[2][0], "coffee.png") || rows[2][6] != "" {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
}

// TestFilesFromPipe: --files-from reads a list from a pipe (as
// `--files-from <(find ...)` gives), and a cancelled run does not wait for
// a pipe nobody writes.
func TestFilesFromPipe(t *testing.T) {
	dir := t.TempDir()
	list := filepath.Join(dir, "list")
	if err := syscall.Mkfifo(list, 0o644); err != nil {
		t.Fatal(err)
	}
	photo := filepath.Join(photosDir, "coffee.png")
	go func() {
		if f, err := os.OpenFile(list, os.O_WRONLY, 0); err == nil {
			f.WriteString(photo + "\n")
			f.Close()
		}
	}()
	ios, out, errOut := testIO("")
	opts := tinyPredict(ios, "json")
	opts.FilesFrom = list
	if err := runPredict(context.Background(), opts); err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if got := recordFiles(jsonRecords(t, out.Bytes())); !slices.Equal(got, []string{photo}) {
		t.Errorf("records for %v", got)
	}

	silent := filepath.Join(dir, "silent")
	if err := syscall.Mkfifo(silent, 0o644); err != nil {
		t.Fatal(err)
	}
	// Release the reader left waiting in open once the test is over.
	t.Cleanup(func() {
		if f, err := os.OpenFile(silent, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	opts = tinyPredict(ios, "json")
	opts.FilesFrom = silent
	start := time.Now()
	if err := runPredict(ctx, opts); err == nil || time.Since(start) > 10*time.Second {
		t.Errorf("runPredict on a silent pipe: %v after %v", err, time.Since(start))
	}
}

// TestBinaryProgressOnTerminal runs the built command with stderr on a
// terminal (script(1) gives it one): a folder run shows its progress line
// and summary there; the same run on pipes shows neither.
func TestBinaryProgressOnTerminal(t *testing.T) {
	bin := binary(t)
	scriptPath, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to give the command a terminal")
	}
	dir, _ := photoFolder(t, 6)
	out := filepath.Join(t.TempDir(), "out.csv")
	command := fmt.Sprintf("%s predict %s --weights %s -o %s", bin, dir, tinyWeights, out)
	term := exec.Command(scriptPath, "-qec", command, "/dev/null")
	term.Env = append(os.Environ(), "RES2NET_HOME="+t.TempDir())
	shown, err := term.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, shown)
	}
	for _, want := range []string{"classifying", "/6", "6 classified, 0 failed, "} {
		if !strings.Contains(string(shown), want) {
			t.Errorf("terminal shows no %q:\n%q", want, shown)
		}
	}
	piped := exec.Command(bin, "predict", dir, "--weights", tinyWeights, "-o", out)
	piped.Env = term.Env
	if msg, err := piped.CombinedOutput(); err != nil || len(msg) != 0 {
		t.Errorf("on pipes: %v, output %q", err, msg)
	}
}
