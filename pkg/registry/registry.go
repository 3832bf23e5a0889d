// Package registry lists the published Res2Net models: where their weights
// are, how they are verified, and how their inputs and outputs read.
package registry

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/res2net/res2net/pkg/download"
	"github.com/res2net/res2net/pkg/model"
)

// Verification says how an entry's file is checked.
type Verification int

const (
	// VerifySHA256: the file's whole SHA-256 and size are known.
	VerifySHA256 Verification = iota
	// VerifyNamePrefix: torch.hub's rule, the SHA-256 starts with the
	// hex digits after the last '-' of the file name.
	VerifyNamePrefix
	// VerifyHub: the Hugging Face hub announces the SHA-256 and size
	// (X-Linked-Etag, X-Linked-Size) when asked with HEAD.
	VerifyHub
)

// String names v as `res2net models` shows it.
func (v Verification) String() string {
	switch v {
	case VerifySHA256:
		return "sha256"
	case VerifyNamePrefix:
		return "sha256 prefix"
	case VerifyHub:
		return "hub etag"
	}
	return fmt.Sprintf("Verification(%d)", int(v))
}

// imageNetMean and imageNetStd are the per-channel statistics of ImageNet
// that every entry normalises with.
var (
	imageNetMean = [3]float32{0.485, 0.456, 0.406}
	imageNetStd  = [3]float32{0.229, 0.224, 0.225}
)

// Entry describes a published checkpoint: where to get it, how to check
// it, and how its model expects images and labels.
type Entry struct {
	// Name identifies the entry on the command line; Aliases are other
	// names Lookup accepts for it.
	Name    string
	Aliases []string
	// Arch names the architecture (timm's model name for the timm
	// entries); Config is the network.
	Arch   string
	Config model.Config
	// Origin says who published the weights and on what data.
	Origin string
	// Params is the published count of learnable parameters.
	Params int64
	// URL is where the file is published; File the name it is cached
	// under. Verify says how it is checked: SHA256 and Size when known
	// (VerifySHA256), else the prefix in the URL's file name or what the
	// hub announces.
	URL    string
	File   string
	Verify Verification
	SHA256 string
	Size   int64
	// Classes are the class names, in logit order.
	Classes []string
	// The evaluation transform the accuracy was measured with: resize the
	// shorter side to Resize with Interpolation ("bilinear"), centre-crop
	// Crop x Crop, scale to [0, 1], normalise each RGB channel with Mean
	// and Std.
	Resize, Crop  int
	Interpolation string
	Mean, Std     [3]float32
	// Top1 and Top5 are the published accuracies in percent, on Dataset's
	// validation set.
	Top1, Top5 float64
	Dataset    string
}

// Source returns what the download package needs to fetch and verify e.
// Its Name is e.File, which a caller that swaps in a mirror's URL keeps.
func (e Entry) Source() download.Source {
	src := download.Source{URL: e.URL, Name: e.File, SHA256: e.SHA256, Size: e.Size}
	switch e.Verify {
	case VerifyNamePrefix:
		src.SHA256Prefix = download.HashPrefix(path.Base(e.URL))
	case VerifyHub:
		src.Hub = true
	}
	return src
}

// IsPublished reports whether a file of hex SHA-256 sum is e's published
// checkpoint, as far as can be told without the network: it has the known
// digest, or starts with the prefix the published name carries
// (torch.hub's rule), or, for a hub file, equals the digest stamped beside
// a verified copy in the cache directory dir ("" for CacheDir()).
func (e Entry) IsPublished(sum, dir string) bool {
	src := e.Source()
	switch {
	case src.SHA256 != "":
		return strings.EqualFold(sum, src.SHA256)
	case src.SHA256Prefix != "":
		return strings.HasPrefix(strings.ToLower(sum), src.SHA256Prefix)
	case !src.Hub || !download.IsSHA256(sum):
		return false
	}
	if dir == "" {
		var err error
		if dir, err = CacheDir(); err != nil {
			return false
		}
	}
	return download.VerifyStamp(filepath.Join(dir, e.File), download.Source{SHA256: sum}) == nil
}

// Holocron's and timm's release locations.
const (
	holocronRelease = "https://github.com/frgfm/Holocron/releases/download/v0.2.1/"
	timmRelease     = "https://github.com/rwightman/pytorch-image-models/releases/download/v0.1-res2net/"
	hubResolve      = "https://huggingface.co/timm/%s/resolve/main/model.safetensors"
)

// Default is the Res2Net-50 26w x 4s checkpoint trained on Imagenette and
// published with Holocron v0.2.1: the model used when none is named.
var Default = Entry{
	Name:    "res2net50_26w_4s",
	Aliases: []string{"holocron/res2net50_26w_4s"},
	Arch:    "res2net50_26w_4s",
	Config:  model.Res2Net50(),
	Origin:  "Holocron v0.2.1",
	Params:  23670610,
	URL:     holocronRelease + "res2net50_26w_4s_224-345170e8.pth",
	File:    "res2net50_26w_4s_224-345170e8.pth",
	Verify:  VerifySHA256,
	SHA256:  "345170e8ff75d10330af55674090b0d9aa751e14b6f3b4a95bb8ea6cdd65be4b",
	Size:    95020747,
	Classes: []string{"tench", "English springer", "cassette player", "chain saw", "church", "French horn", "garbage truck", "gas pump", "golf ball", "parachute"},
	Resize:  232,
	Crop:    224,
	// Pillow's BILINEAR, antialiased when shrinking, as torchvision uses it.
	Interpolation: "bilinear",
	Mean:          imageNetMean,
	Std:           imageNetStd,
	Top1:          93.94,
	Top5:          99.41,
	Dataset:       "Imagenette",
}

// timm's evaluation transform for every Res2Net: crop_pct 0.875 at 224,
// so the shorter side becomes floor(224/0.875).
const (
	timmCrop   = 224
	timmResize = 256
)

// timm returns the entry of one of timm's ImageNet-1k Res2Nets, named
// <arch>.in1k as timm names its pretrained weights. Its weights are the
// GitHub release file when file is not "", else the hub's safetensors.
func timm(arch string, cfg model.Config, file string, params int64, top1, top5 float64) Entry {
	name := arch + ".in1k"
	e := Entry{
		Name:          name,
		Aliases:       []string{"timm/" + name, "timm/" + arch},
		Arch:          arch,
		Config:        cfg,
		Origin:        "timm",
		Params:        params,
		Classes:       ImageNet1k(),
		Resize:        timmResize,
		Crop:          timmCrop,
		Interpolation: "bilinear",
		Mean:          imageNetMean,
		Std:           imageNetStd,
		Top1:          top1,
		Top5:          top5,
		Dataset:       "ImageNet-1k",
	}
	if file != "" {
		e.URL, e.File, e.Verify = timmRelease+file, file, VerifyNamePrefix
	} else {
		e.URL, e.File, e.Verify = fmt.Sprintf(hubResolve, name), name+".safetensors", VerifyHub
	}
	return e
}

// entries are all the models, Default first. A bare timm architecture
// name is an alias of its .in1k entry unless another entry has that name
// (res2net50_26w_4s is Holocron's).
var entries = func() []Entry {
	es := []Entry{
		Default,
		timm("res2net50_26w_4s", model.Res2Net50_26w_4s(), "res2net50_26w_4s-06e79181.pth", 25699120, 77.994, 93.860),
		timm("res2net50_48w_2s", model.Res2Net50_48w_2s(), "res2net50_48w_2s-afed724a.pth", 25287304, 77.528, 93.562),
		timm("res2net50_14w_8s", model.Res2Net50_14w_8s(), "res2net50_14w_8s-6527dddc.pth", 25059816, 78.142, 93.852),
		timm("res2net50_26w_6s", model.Res2Net50_26w_6s(), "res2net50_26w_6s-19041792.pth", 37051448, 78.586, 94.120),
		timm("res2net50_26w_8s", model.Res2Net50_26w_8s(), "res2net50_26w_8s-2c7c9f12.pth", 48403776, 78.950, 94.280),
		timm("res2net101_26w_4s", model.Res2Net101_26w_4s(), "res2net101_26w_4s-02a759a1.pth", 45206688, 79.192, 94.466),
		timm("res2next50", model.Res2NeXt50(), "res2next50_4s-6ef7e7bf.pth", 24671464, 78.238, 93.904),
		timm("res2net50d", model.Res2Net50d(), "", 25718352, 80.280, 95.028),
		timm("res2net101d", model.Res2Net101d(), "", 45225920, 81.236, 95.346),
	}
	for i := range es {
		if es[i].Origin == "timm" && !slices.ContainsFunc(es, func(o Entry) bool { return o.Name == es[i].Arch }) {
			es[i].Aliases = append(es[i].Aliases, es[i].Arch)
		}
	}
	return es
}()

// All returns every registered model, the default first.
func All() []Entry { return slices.Clone(entries) }

// Names returns the names of every registered model, the default first.
func Names() []string {
	names := make([]string, len(entries))
	for i, e := range entries {
		names[i] = e.Name
	}
	return names
}

// ForConfig returns the entry whose network is cfg (its architecture,
// classes and key layout; the precision is not compared), so that a
// checkpoint file whose configuration model.Infer read gets that model's
// labels and transform. ok is false when no entry has cfg.
func ForConfig(cfg model.Config) (e Entry, ok bool) {
	cfg.Precision = 0
	for _, e := range entries {
		c := e.Config
		c.Precision = 0
		if c == cfg {
			return e, true
		}
	}
	return Entry{}, false
}

// ErrUnknownModel reports a name Lookup does not know.
var ErrUnknownModel = errors.New("unknown model")

// Lookup returns the entry called name or one of its aliases, ignoring
// case. An unknown name is an error wrapping ErrUnknownModel that suggests
// the closest names and lists them all.
func Lookup(name string) (Entry, error) {
	for _, e := range entries {
		if strings.EqualFold(e.Name, name) || slices.ContainsFunc(e.Aliases, func(a string) bool { return strings.EqualFold(a, name) }) {
			return e, nil
		}
	}
	hint := ""
	if near := closest(name); len(near) > 0 {
		hint = "; did you mean " + strings.Join(near, " or ") + "?"
	}
	return Entry{}, fmt.Errorf("%w %q%s\nknown models: %s", ErrUnknownModel, name, hint, strings.Join(Names(), ", "))
}

// maxSuggestions bounds the names a "did you mean" offers.
const maxSuggestions = 3

// closest returns the entry names nearest to name by edit distance (ties
// all), when near enough to be a typo.
func closest(name string) []string {
	type cand struct {
		name string
		dist int
	}
	var cands []cand
	name = strings.ToLower(name)
	for _, e := range entries {
		best := -1
		for _, n := range append([]string{e.Name}, e.Aliases...) {
			if d := editDistance(name, strings.ToLower(n)); best < 0 || d < best {
				best = d
			}
		}
		if best <= max(2, len(name)/4) {
			cands = append(cands, cand{e.Name, best})
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return a.dist - b.dist })
	var out []string
	for _, c := range cands {
		if c.dist > cands[0].dist || len(out) == maxSuggestions {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
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

// TorchHubDir returns where torch.hub caches checkpoints:
// $TORCH_HOME/hub/checkpoints, TORCH_HOME defaulting to
// $XDG_CACHE_HOME/torch, then ~/.cache/torch, as torch.hub.get_dir does.
func TorchHubDir() (string, error) {
	home := os.Getenv("TORCH_HOME")
	if home == "" {
		cache := os.Getenv("XDG_CACHE_HOME")
		if cache == "" {
			h, err := os.UserHomeDir()
			if err != nil {
				return "", fmt.Errorf("torch hub directory: %w", err)
			}
			cache = filepath.Join(h, ".cache")
		}
		home = filepath.Join(cache, "torch")
	}
	return filepath.Join(home, "hub", "checkpoints"), nil
}
