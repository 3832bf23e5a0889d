// Package paritytest finds the full-size parity fixtures for the tests
// that use them. `make parity` writes them (scripts/make_parity.py and the
// other fixture scripts with --full) into the folder RES2NET_PARITY_DIR
// names; they are too big to commit, so without it those tests skip.
package paritytest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/res2net/res2net/internal/npy"
	"github.com/res2net/res2net/pkg/ops"
)

// dirEnv names the fixture folder.
const dirEnv = "RES2NET_PARITY_DIR"

// Dir returns the fixture folder, or skips t when RES2NET_PARITY_DIR is
// not set.
func Dir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(dirEnv)
	if dir == "" {
		t.Skip(dirEnv + " not set; run `make parity`")
	}
	return dir
}

// Photos are PyTorch's logits on the test photos of testdata/photos.
type Photos struct {
	// Files are the photos' file names, in the order of Logits' rows.
	Files []string
	// Logits has one row per photo, one column per class.
	Logits *ops.Tensor
}

// ReadPhotos reads the photo order dir/photos.json and the logits
// dir/logitsFile whose rows it names, failing t on an error.
func ReadPhotos(t testing.TB, dir, logitsFile string) Photos {
	t.Helper()
	p, err := readPhotos(dir, logitsFile)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func readPhotos(dir, logitsFile string) (Photos, error) {
	path := filepath.Join(dir, "photos.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return Photos{}, err
	}
	var order struct{ Files []string }
	if err := json.Unmarshal(raw, &order); err != nil {
		return Photos{}, fmt.Errorf("%s: %w", path, err)
	}
	logitsPath := filepath.Join(dir, logitsFile)
	logits, err := npy.Read(logitsPath)
	if err != nil {
		return Photos{}, err
	}
	// Row slices by this shape: a mismatch would panic there.
	if len(logits.Shape) != 2 || logits.Shape[0] != len(order.Files) {
		return Photos{}, fmt.Errorf("%s: shape %v, want %d rows (one per photo of %s)", logitsPath, logits.Shape, len(order.Files), path)
	}
	return Photos{Files: order.Files, Logits: logits}, nil
}

// Row returns PyTorch's logits of photo i.
func (p Photos) Row(i int) []float32 {
	classes := p.Logits.Shape[1]
	return p.Logits.Data[i*classes : (i+1)*classes]
}
