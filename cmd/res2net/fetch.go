package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/res2net/res2net/pkg/download"
	"github.com/res2net/res2net/pkg/registry"
	"github.com/spf13/cobra"
)

type fetchOptions struct {
	IO      *ioStreams
	Model   string // a registry name; "" for the default
	URL     string
	From    string
	SHA256  string
	Force   bool
	Quiet   bool
	MaxSize int64
	// Cache is the cache directory, "" for registry.CacheDir; TorchHub the
	// torch hub's, "" for registry.TorchHubDir.
	Cache, TorchHub string
	// Download is the base of the download options (client, retries);
	// the flags set the rest.
	Download download.Options
}

func newFetchCmd(io *ioStreams) *cobra.Command {
	opts := &fetchOptions{IO: io}
	maxSize := sizeFlag{n: download.DefaultMaxSize}
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Download and verify a model's checkpoint into the cache",
		Long: `Download the checkpoint of a model (the default one unless --model names
another: see 'res2net models'), verify it, and store it in the cache
($RES2NET_HOME, else the user cache directory). A copy in the torch hub cache
($TORCH_HOME/hub/checkpoints) is verified and used instead of downloading.
An interrupted download resumes where it stopped. Prints the checkpoint's path.

Verification: the Holocron file by its SHA-256 and size; timm's GitHub files
by the SHA-256 prefix their names carry (torch.hub's rule); the Hugging Face
hub files by the SHA-256 and size the hub announces. The full SHA-256 of what
was stored is recorded beside it (NAME.stamp), so later checks cost a stat.

--from FILE imports a copy downloaded elsewhere, verified the same way.
--url fetches from a mirror; with --sha256, a file whose digest differs from
the published one is cached under its own name, never taken for the model.`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.MaxSize = maxSize.n
			return runFetch(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Model, "model", "m", "", "the model to fetch (default "+registry.Default.Name+"; see 'res2net models')")
	f.StringVar(&opts.URL, "url", "", "download from this URL instead (a mirror)")
	f.StringVar(&opts.From, "from", "", "import this local copy of the file instead of downloading")
	f.StringVar(&opts.SHA256, "sha256", "", "expected SHA-256 of the file at --url or --from")
	f.BoolVar(&opts.Force, "force", false, "download again even if a verified copy is cached")
	f.BoolVarP(&opts.Quiet, "quiet", "q", false, "no progress bar or notices")
	f.Var(&maxSize, "max-size", "largest download accepted when its size is not known in advance (bytes, or with KiB, MiB, GiB)")
	completeValues(cmd, "model", modelNames())
	return cmd
}

func runFetch(ctx context.Context, opts *fetchOptions) error {
	entry, err := lookupModel(opts.Model)
	if err != nil {
		return err
	}
	switch {
	case opts.URL != "" && opts.From != "":
		return usageErrorf("--url and --from exclude each other")
	case opts.SHA256 != "" && opts.URL == "" && opts.From == "":
		return usageErrorf("--sha256 checks the file at --url or --from: give one of them")
	case opts.Force && opts.From != "":
		return usageErrorf("--force downloads again; --from imports a local file: choose one")
	}
	dir := opts.Cache
	if dir == "" {
		if dir, err = registry.CacheDir(); err != nil {
			return err
		}
	}
	dl := opts.Download
	dl.Force, dl.MaxSize = opts.Force, opts.MaxSize
	if opts.IO.ErrTTY && !opts.Quiet {
		dl.Progress = opts.IO.ErrOut
	}
	var path string
	switch {
	case opts.From != "":
		src, err := importSource(entry, opts.SHA256)
		if err != nil {
			return err
		}
		path, err = download.Import(ctx, src, dir, opts.From, dl)
		if errors.Is(err, download.ErrNoHubDigest) && ctx.Err() == nil {
			return fmt.Errorf("%w\nWithout the hub, give the file's SHA-256 with --sha256.", err)
		}
		if err != nil {
			return err
		}
	case opts.URL != "":
		src, err := fetchSource(entry, opts.URL, opts.SHA256)
		if err != nil {
			return err
		}
		if path, err = download.Fetch(ctx, src, dir, dl); err != nil {
			if src.Name == entry.File && ctx.Err() == nil { // the model's file: say what else works
				err = &registry.UnavailableError{Entry: entry, Path: filepath.Join(dir, entry.File), Err: err}
			}
			return withSizeHint(err)
		}
	default:
		eo := registry.EnsureOptions{Dir: dir, TorchHub: opts.TorchHub, Force: opts.Force, Download: dl}
		if !opts.Quiet {
			eo.Notice = opts.IO.ErrOut
		}
		if path, err = registry.Ensure(ctx, entry, eo); err != nil {
			return withSizeHint(err)
		}
	}
	fmt.Fprintln(opts.IO.Out, path)
	return nil
}

// lookupModel returns the registry entry called name, the default for "";
// an unknown name is a usage error.
func lookupModel(name string) (registry.Entry, error) {
	if name == "" {
		return registry.Default, nil
	}
	e, err := registry.Lookup(name)
	if err != nil {
		return e, &usageError{err}
	}
	return e, nil
}

// fetchSource applies --url and --sha256 to entry's file. A mirror of the
// published file keeps what verifies it and its cache name, so predict
// finds it; a --sha256 that is not the published file's makes it another
// file, named after its URL, so it is never taken for the model.
func fetchSource(entry registry.Entry, url, sha string) (download.Source, error) {
	src := entry.Source()
	if url != "" {
		src.URL = url
	}
	if sha == "" {
		return src, nil
	}
	if !download.IsSHA256(sha) {
		return src, usageErrorf("--sha256 %q is not a 64-digit hex SHA-256", sha)
	}
	if !publishedDigest(src, sha) {
		return download.Source{URL: src.URL, SHA256: strings.ToLower(sha)}, nil
	}
	src.SHA256 = strings.ToLower(sha)
	return src, nil
}

// importSource applies --sha256 to the file --from imports as entry's: a
// digest that cannot be the published file's is a usage error.
func importSource(entry registry.Entry, sha string) (download.Source, error) {
	src := entry.Source()
	if sha == "" {
		return src, nil
	}
	if !download.IsSHA256(sha) {
		return src, usageErrorf("--sha256 %q is not a 64-digit hex SHA-256", sha)
	}
	if !publishedDigest(src, sha) {
		return src, usageErrorf("--sha256 %s cannot be the digest of %s's published file", strings.ToLower(sha), entry.Name)
	}
	src.SHA256 = strings.ToLower(sha)
	return src, nil
}

// publishedDigest reports whether sha may be the digest of src's published
// file: equal to the one known, starting with the known prefix, or, for a
// hub file, anything (the hub still has to agree when asked).
func publishedDigest(src download.Source, sha string) bool {
	switch {
	case src.SHA256 != "":
		return strings.EqualFold(sha, src.SHA256)
	case src.SHA256Prefix != "":
		return strings.HasPrefix(strings.ToLower(sha), strings.ToLower(src.SHA256Prefix))
	}
	return src.Hub
}

// withSizeHint names the flag that raises the size limit.
func withSizeHint(err error) error {
	if errors.Is(err, download.ErrTooLarge) {
		return fmt.Errorf("%w (raise it with --max-size)", err)
	}
	return err
}

// sizeFlag is a byte count given as a number with an optional binary
// unit: 1048576, 512KiB, 100MiB, 2GiB (K, M, G and T are read as KiB...).
type sizeFlag struct{ n int64 }

// sizeUnits are the multipliers sizeFlag accepts, lower-cased.
var sizeUnits = []struct {
	suffix string
	mult   int64
}{
	{"kib", 1 << 10}, {"mib", 1 << 20}, {"gib", 1 << 30}, {"tib", 1 << 40},
	{"k", 1 << 10}, {"m", 1 << 20}, {"g", 1 << 30}, {"t", 1 << 40},
	{"b", 1},
}

func (s *sizeFlag) String() string {
	for _, u := range sizeUnits[:4] {
		if s.n >= u.mult && s.n%u.mult == 0 && (s.n/u.mult < 1024 || u.suffix == "tib") {
			return strconv.FormatInt(s.n/u.mult, 10) + strings.Replace(strings.ToUpper(u.suffix), "I", "i", 1)
		}
	}
	return strconv.FormatInt(s.n, 10)
}

func (s *sizeFlag) Set(v string) error {
	num, mult := strings.TrimSpace(strings.ToLower(v)), int64(1)
	for _, u := range sizeUnits {
		if rest, ok := strings.CutSuffix(num, u.suffix); ok {
			num, mult = strings.TrimSpace(rest), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 || n > (1<<62)/mult {
		return fmt.Errorf("%q is not a size: give a positive number of bytes, e.g. 2GiB or 500MiB", v)
	}
	s.n = n * mult
	return nil
}

func (s *sizeFlag) Type() string { return "size" }
