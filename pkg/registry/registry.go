// Package registry lists the published Res2Net models: where their weights
// are, how they are verified, and how their inputs and outputs read.
package registry

import (
	"fmt"
	"github.com/res2net/res2net/pkg/download"
	"os"
	"path"
	"path/filepath"
)

// Entry describes a published checkpoint: where to get it, how to check
// it, and how its model expects images and labels.
type Entry struct {
	// Name identifies the entry on the command line.
	Name string
	// Arch names the architecture the weights are for.
	Arch string
	// URL, SHA256 (hex) and Size (bytes) identify the file.
	URL    string
	SHA256 string
	Size   int64
	// Classes are the labels, in logit order.
	Classes []string
	// Resize is the shorter side an image is resized to before the centre
	// Crop; Mean and Std normalise the RGB channels of [0, 1] pixels.
	Resize, Crop int
	Mean, Std    [3]float32
	// Top1 and Top5 are the published accuracies in percent.
	Top1, Top5 float64
}

// Default is the Res2Net-50 26w x 4s checkpoint trained on Imagenette and
// published with Holocron v0.2.1.
var Default = Entry{
	Name:    "res2net50_26w_4s",
	Arch:    "res2net50_26w_4s",
	URL:     "https://github.com/frgfm/Holocron/releases/download/v0.2.1/res2net50_26w_4s_224-345170e8.pth",
	SHA256:  "345170e8ff75d10330af55674090b0d9aa751e14b6f3b4a95bb8ea6cdd65be4b",
	Size:    95020747,
	Classes: []string{"tench", "English springer", "cassette player", "chain saw", "church", "French horn", "garbage truck", "gas pump", "golf ball", "parachute"},
	Resize:  232,
	Crop:    224,
	Mean:    [3]float32{0.485, 0.456, 0.406},
	Std:     [3]float32{0.229, 0.224, 0.225},
	Top1:    93.94,
	Top5:    99.41,
}

// Source returns what Fetch needs to download e. Name is the published
// file's name, which a caller that swaps in a mirror's URL keeps.
func (e Entry) Source() download.Source {
	return download.Source{URL: e.URL, SHA256: e.SHA256, Size: e.Size, Name: path.Base(e.URL)}
}

// CacheDir returns the directory checkpoints are downloaded to:
// $RES2NET_HOME when set, else res2net under the user's cache directory
// (os.UserCacheDir). It does not create the directory.
func CacheDir() (string, error) {
	if dir := os.Getenv("RES2NET_HOME"); dir != "" {
		return dir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("cache directory: %w (set RES2NET_HOME)", err)
	}
	return filepath.Join(base, "res2net"), nil
}
