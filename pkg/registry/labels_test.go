package registry

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestImageNet1k(t *testing.T) {
	names := ImageNet1k()
	if len(names) != 1000 || names[0] != "tench" || names[1] != "goldfish" || names[999] != "toilet tissue" {
		t.Fatalf("%d names, first %q, last %q", len(names), names[0], names[len(names)-1])
	}
	seen := map[string]int{}
	for i, n := range names {
		if j, dup := seen[n]; dup {
			t.Errorf("%q is class %d and %d", n, j, i)
		}
		seen[n] = i
	}
	for _, e := range All() {
		if e.Dataset == "ImageNet-1k" && !slices.Equal(e.Classes, names) {
			t.Errorf("%s: labels are not ImageNet-1k's", e.Name)
		}
	}
}

func TestReadLabels(t *testing.T) {
	tests := []struct {
		name, text string
		want       []string
		err        string
	}{
		{name: "plain", text: "cat\ndog\n", want: []string{"cat", "dog"}},
		{name: "no final newline, CRLF, spaces", text: " cat \r\ndog\r\nbig bird", want: []string{"cat", "dog", "big bird"}},
		{name: "trailing empty lines", text: "cat\ndog\n\n\n", want: []string{"cat", "dog"}},
		{name: "empty line inside", text: "cat\n\ndog\n", err: "line 2 is empty"},
		{name: "empty line first", text: "\ncat\n", err: "line 1 is empty"},
		{name: "empty file", text: "", err: "no names"},
		{name: "blank file", text: "\n \n", err: "no names"},
		{name: "binary", text: "cat\nd\x00g\n", err: "line 2: a NUL byte"},
		{name: "long line", text: "cat\n" + strings.Repeat("x", maxLabelBytes+10) + "\n", err: "a line longer than 4096 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "labels.txt")
			if err := os.WriteFile(p, []byte(tt.text), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := ReadLabels(p)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), p) {
					t.Errorf("error %v, want one naming %s and %q", err, p, tt.err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ReadLabels = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := ReadLabels(filepath.Join(t.TempDir(), "missing.txt")); err == nil || !strings.Contains(err.Error(), "missing.txt") {
		t.Errorf("missing file: %v", err)
	}
}

// TestReadLabelsTooMany: a file of more than maxLabels names is refused.
func TestReadLabelsTooMany(t *testing.T) {
	p := filepath.Join(t.TempDir(), "labels.txt")
	if err := os.WriteFile(p, []byte(strings.Repeat("x\n", maxLabels+1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadLabels(p); err == nil || !strings.Contains(err.Error(), "more than 1048576 names") {
		t.Errorf("error %v", err)
	}
}

// FuzzParseLabels: any bytes give names that are non-empty, trimmed,
// NUL-free single lines, or an error; never a panic.
func FuzzParseLabels(f *testing.F) {
	for _, seed := range []string{"cat\ndog\n", " a \r\nb", "\n\nx", "a\n\nb", "x\x00y", strings.Repeat("y", 5000), ""} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		names, err := parseLabels(bytes.NewReader(data))
		if err != nil {
			return
		}
		if len(names) == 0 {
			t.Fatal("no names and no error")
		}
		for i, n := range names {
			if n == "" || n != strings.TrimSpace(n) || strings.ContainsAny(n, "\n\x00") || len(n) > maxLabelBytes {
				t.Fatalf("name %d is %q", i, n)
			}
		}
	})
}
