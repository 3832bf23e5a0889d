package registry

import (
	"bufio"
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// imageNet1kText is ImageNet-1k's class names in logit order, one a line,
// written by scripts/make_labels.py from Debian's torchvision.
//
//go:embed labels/imagenet1k.txt
var imageNet1kText []byte

// imageNet1k parses imageNet1kText once; a test checks that it holds the
// 1000 names.
var imageNet1k = sync.OnceValue(func() []string {
	names, err := parseLabels(bytes.NewReader(imageNet1kText))
	if err != nil {
		// The committed file is broken: the build is, not an input.
		panic(fmt.Sprintf("embedded labels/imagenet1k.txt: %v", err))
	}
	return names
})

// ImageNet1k returns ImageNet-1k's 1000 class names in logit order
// (0 "tench" ... 999 "toilet tissue"), as torchvision names them. The
// slice is shared: do not modify it.
func ImageNet1k() []string { return imageNet1k() }

// Limits of a labels file: more classes than any head this program runs,
// and far longer names than any data set uses.
const (
	maxLabels     = 1 << 20
	maxLabelBytes = 4 << 10
)

// ReadLabels reads class names from a text file, one a line, in logit
// order. Surrounding spaces (and "\r") are dropped, and so are empty lines
// at the end. A file with no names, an empty line before the last name
// (it would shift every label after it), a NUL byte, a name over 4 KiB or
// more than 2^20 names is an error naming the file. Whether the count fits a model's head
// is for the caller to check.
func ReadLabels(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("labels: %w", err)
	}
	defer f.Close()
	names, err := parseLabels(f)
	if err != nil {
		return nil, fmt.Errorf("labels %s: %w", path, err)
	}
	return names, nil
}

// parseLabels reads one name a line.
func parseLabels(r io.Reader) ([]string, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), maxLabelBytes+2) // +2 for "\r\n"
	var names []string
	blank := 0 // the first empty line not yet followed by a name
	for line := 1; sc.Scan(); line++ {
		name := strings.TrimSpace(sc.Text())
		if strings.IndexByte(name, 0) >= 0 {
			return nil, fmt.Errorf("line %d: a NUL byte: not a text file", line)
		}
		if name == "" {
			if blank == 0 {
				blank = line
			}
			continue
		}
		if blank > 0 {
			return nil, fmt.Errorf("line %d is empty: one name a line, in logit order", blank)
		}
		if len(names) >= maxLabels {
			return nil, fmt.Errorf("more than %d names", maxLabels)
		}
		names = append(names, name)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, fmt.Errorf("a line longer than %d bytes", maxLabelBytes)
		}
		return nil, err
	}
	if len(names) == 0 {
		return nil, errors.New("no names")
	}
	return names, nil
}
