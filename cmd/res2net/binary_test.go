package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinary builds the command and runs it as a user would.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := filepath.Join(t.TempDir(), "res2net")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	photo := filepath.Join(photosDir, "astronaut.jpg")
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"predict", []string{"predict", "--weights", tinyWeights, photo, "--topk", "5"}, 0, "  5  ", ""},
		{"predict bad file", []string{"predict", "--weights", tinyWeights, "--format", "json", photo, "nope.jpg"}, 1, `"rank":1`, "nope.jpg"},
		{"inspect", []string{"inspect"}, 0, "23,670,610", ""},
		{"usage", []string{"predict"}, 2, "", "requires at least 1 arg"},
		{"bench", []string{"bench", "--weights", tinyWeights, "--iters", "2", "--warmup", "1", "--size", "64", "--format", "json"}, 0, `"images_per_second"`, ""},
		{"version", []string{"version"}, 0, "res2net ", ""},
		{"completion", []string{"completion", "bash"}, 0, "bash completion", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(bin, tt.args...)
			cmd.Env = append(os.Environ(), "RES2NET_HOME="+t.TempDir())
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := 0
			var exit *exec.ExitError
			if errors.As(err, &exit) {
				code = exit.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("exit %d (want %d)\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
		})
	}
}
