package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/res2net/res2net/pkg/download"
)

// EnsureOptions tune Ensure. The zero value uses the default cache and
// torch hub directories and may download.
type EnsureOptions struct {
	// Dir is the cache directory; "" means CacheDir().
	Dir string
	// TorchHub is the directory looked in for a copy of the published file
	// (by its published name) before downloading; "" means TorchHubDir().
	// A copy there is verified, then copied into Dir.
	TorchHub string
	// Offline forbids network access: only a verified copy in Dir or
	// TorchHub will do.
	Offline bool
	// Force downloads the file again even when a verified copy exists.
	Force bool
	// Notice, when not nil, is told in a line before a download starts, a
	// copy is imported or a cached file fails its check.
	Notice io.Writer
	// Download tunes the download itself (progress, retries, limits).
	Download download.Options
}

// UnavailableError reports a model whose checkpoint could not be had, and
// says what the user can do instead.
type UnavailableError struct {
	Entry Entry
	// Path is where the verified file would be.
	Path string
	// Offline is set when no download was allowed.
	Offline bool
	// Err is the cause: the failed download, or the failed check of the
	// cached file.
	Err error
}

func (e *UnavailableError) Error() string {
	model := ""
	if e.Entry.Name != Default.Name {
		model = " --model " + e.Entry.Name
	}
	var what string
	switch {
	case e.Offline && errors.Is(e.Err, fs.ErrNotExist):
		what = fmt.Sprintf("no cached checkpoint of %s at %s (offline)", e.Entry.Name, e.Path)
	case e.Offline:
		what = fmt.Sprintf("no verified cached checkpoint of %s (offline): %v", e.Entry.Name, e.Err)
	default:
		what = fmt.Sprintf("cannot get the checkpoint of %s: %v", e.Entry.Name, e.Err)
	}
	return what + "\nTo go on without it: pass --weights FILE (a checkpoint you have); or run" +
		" 'res2net fetch" + model + " --url URL' (a mirror) or 'res2net fetch" + model + " --from FILE'" +
		" (a copy downloaded elsewhere); or set RES2NET_HOME to a cache that holds it."
}

func (e *UnavailableError) Unwrap() error { return e.Err }

// Ensure returns the path of a verified copy of e's checkpoint in the
// cache. In order, it uses: the cached file, once verified (hashed the
// first time, then checked against its stamp); a copy in the torch hub
// cache, verified and copied in; a download, unless opts.Offline. When all
// fail, the error is an *UnavailableError, which says what to do next; a
// cancelled ctx gives ctx's error.
func Ensure(ctx context.Context, e Entry, opts EnsureOptions) (string, error) {
	src := e.Source()
	dir := opts.Dir
	if dir == "" {
		var err error
		if dir, err = CacheDir(); err != nil {
			return "", err
		}
	}
	name, err := src.FileName()
	if err != nil {
		return "", fmt.Errorf("%s: %w", e.Name, err)
	}
	p := filepath.Join(dir, name)
	unavailable := func(err error) (string, error) {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", &UnavailableError{Entry: e, Path: p, Offline: opts.Offline, Err: err}
	}
	notice := func(format string, args ...any) {
		if opts.Notice != nil {
			fmt.Fprintf(opts.Notice, format+"\n", args...)
		}
	}
	var cacheErr error
	if !opts.Force {
		cacheErr = download.Verify(p, src)
		switch {
		case cacheErr == nil:
			return p, nil
		case errors.Is(cacheErr, download.ErrUnverified) && !opts.Offline:
			// The download asks the hub for the digest, and keeps the file
			// when it matches.
		case !errors.Is(cacheErr, fs.ErrNotExist) && !opts.Offline:
			notice("Cached checkpoint rejected: %v", cacheErr)
		}
		if p, ok := importTorchHub(ctx, e, src, dir, opts, notice); ok {
			return p, nil
		}
	}
	if opts.Offline {
		return unavailable(cacheErr)
	}
	notice("Checkpoint of %s not cached; downloading %s", e.Name, e.URL)
	dl := opts.Download
	dl.Force = opts.Force
	if p, err = download.Fetch(ctx, src, dir, dl); err != nil {
		return unavailable(err)
	}
	return p, nil
}

// importTorchHub copies a verified copy of e's file from the torch hub
// cache into dir; ok is false when there is none that verifies. torch.hub
// keeps only files it downloaded itself, named after their URL: the
// Hugging Face hub's files are never there.
func importTorchHub(ctx context.Context, e Entry, src download.Source, dir string, opts EnsureOptions, notice func(string, ...any)) (p string, ok bool) {
	if src.Hub {
		return "", false
	}
	th := opts.TorchHub
	if th == "" {
		var err error
		if th, err = TorchHubDir(); err != nil {
			return "", false
		}
	}
	cand := filepath.Join(th, path.Base(e.URL))
	if fi, err := os.Stat(cand); err != nil || !fi.Mode().IsRegular() {
		return "", false
	}
	notice("Importing the torch hub's copy %s", cand)
	p, err := download.Import(ctx, src, dir, cand, opts.Download)
	if err != nil {
		notice("Not using the torch hub's copy: %v", err)
		return "", false
	}
	return p, true
}
