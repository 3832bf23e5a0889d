// Package download fetches files over HTTP into a local cache: verified
// against a hash, resumed after a cut, retried on transient failures,
// renamed into place only when complete.
package download

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Source identifies a file to download.
type Source struct {
	URL string
	// SHA256 is the expected hex digest; "" skips the check.
	SHA256 string
	// Size is the expected length in bytes; 0 when unknown.
	Size int64
	// Name is the file's name in the cache directory, so that a mirror's
	// download lands where the published file would; "" means the last
	// element of the URL path. It must be a plain file name.
	Name string
}

// FileName returns the name src is stored under in the cache directory:
// Name, or else the last element of the URL path. It fails for a URL that
// is not http(s) or names no file, and for a Name that is not a plain file
// name.
func (src Source) FileName() (string, error) {
	u, err := url.Parse(src.URL)
	if err != nil {
		return "", err
	}
	name := path.Base(u.Path)
	if (u.Scheme != "http" && u.Scheme != "https") || name == "/" || name == "." || name == ".." {
		return "", errors.New("not an http(s) URL of a file")
	}
	if src.Name == "" {
		return name, nil
	}
	// filepath.Base catches every separator of the OS ('\' too on
	// Windows) and a volume name.
	if src.Name == "." || src.Name == ".." || filepath.Base(src.Name) != src.Name {
		return "", fmt.Errorf("file name %q is not a plain file name", src.Name)
	}
	return src.Name, nil
}

// Defaults of Options.
const (
	DefaultRetries      = 4
	DefaultStallTimeout = 30 * time.Second
	DefaultBackoff      = time.Second
	maxBackoff          = time.Minute
)

// Options tune Fetch. The zero value is ready to use.
type Options struct {
	// Force downloads the file again even when a verified copy exists.
	Force bool
	// Progress, when not nil, receives a progress bar (bytes, rate, ETA)
	// and retry notices. Pass a terminal, not a log file.
	Progress io.Writer
	// Client makes the requests; nil means http.DefaultClient.
	Client *http.Client
	// Retries is how many times a transient failure (network error, HTTP
	// 429 or 5xx, stall, connection cut) is retried: 0 means
	// DefaultRetries, a negative value none.
	Retries int
	// StallTimeout abandons an attempt that receives no data for this
	// long; 0 means DefaultStallTimeout.
	StallTimeout time.Duration
	// Backoff is the wait before the first retry, doubled for each further
	// one (at most a minute); 0 means DefaultBackoff.
	Backoff time.Duration
}

// ErrChecksum reports a downloaded file whose SHA-256 differs from the
// expected one.
var ErrChecksum = errors.New("sha256 mismatch")

// Fetch downloads src.URL into dir (created if needed) and returns the
// path of the file, named src.Name or else after the last element of the
// URL path.
//
// A file already there that matches src.Size and src.SHA256 is returned
// without network access, unless opts.Force is set. Otherwise the data goes
// to <name>.part in dir, hashed as it streams; an interrupted download
// (error, stall, cancelled ctx) leaves the .part file, which the next call
// resumes with an HTTP Range request. The file is renamed into place only
// once its size and hash are verified; on a hash mismatch the .part file is
// deleted. A <name>.lock file serialises concurrent calls, including from
// other processes.
func Fetch(ctx context.Context, src Source, dir string, opts Options) (string, error) {
	fail := func(err error) (string, error) { return "", fmt.Errorf("fetch %s: %w", src.URL, err) }
	name, err := src.FileName()
	if err != nil {
		return fail(err)
	}
	final := filepath.Join(dir, name)
	// cached reports whether a verified copy may be used.
	cached := func() (bool, error) {
		if opts.Force {
			return false, nil
		}
		return verified(final, src)
	}
	switch ok, err := cached(); {
	case err != nil:
		return fail(err)
	case ok:
		return final, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail(fmt.Errorf("cache directory: %w", err))
	}
	unlock, err := lockPath(ctx, final+".lock", opts.Progress)
	if err != nil {
		return fail(err)
	}
	defer unlock()
	// Another process may have finished the download while we waited.
	switch ok, err := cached(); {
	case err != nil:
		return fail(err)
	case ok:
		return final, nil
	}
	d := newDownload(src, final, name, opts)
	if err := d.run(ctx); err != nil {
		return fail(err)
	}
	return final, nil
}

// verified reports whether path exists and matches src.
func verified(path string, src Source) (bool, error) {
	fi, err := os.Stat(path)
	if err != nil {
		// Missing, or unreachable: creating the directory and the lock
		// file will report the problem more clearly.
		return false, nil
	}
	if !fi.Mode().IsRegular() {
		return false, fmt.Errorf("%s is not a regular file", path)
	}
	if src.Size > 0 && fi.Size() != src.Size {
		return false, nil
	}
	if src.SHA256 == "" {
		return true, nil
	}
	sum, err := SHA256File(path)
	return err == nil && strings.EqualFold(sum, src.SHA256), err
}

// SHA256File returns the hex SHA-256 digest of the file at path.
func SHA256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("sha256 %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("sha256 %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// lockPath takes an exclusive lock on the file at path, creating it, and
// waits for it while ctx allows. The file is left in place: removing it
// would let a waiting process lock a file nobody else sees.
func lockPath(ctx context.Context, path string, progress io.Writer) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("cannot write to the cache directory: %w", err)
	}
	for waited := false; ; waited = true {
		ok, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if ok {
			return func() { unlockFile(f); f.Close() }, nil
		}
		if !waited && progress != nil {
			fmt.Fprintf(progress, "waiting for another download (lock %s)\n", path)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// transientError marks a failure worth retrying.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(format string, args ...any) error {
	return &transientError{fmt.Errorf(format, args...)}
}

// errStalled cancels an attempt that received no data in time.
var errStalled = errors.New("stalled")

// download is one Fetch in progress, its .part file open and locked.
type download struct {
	src               Source
	final, part, name string
	opts              Options
	client            *http.Client

	f    *os.File
	have int64     // bytes in f, all hashed
	hash hash.Hash // of f's contents
	bar  *progressbar.ProgressBar
}

func newDownload(src Source, final, name string, opts Options) *download {
	if opts.Retries == 0 {
		opts.Retries = DefaultRetries
	}
	if opts.StallTimeout <= 0 {
		opts.StallTimeout = DefaultStallTimeout
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	return &download{src: src, final: final, part: final + ".part", name: name, opts: opts, client: client, hash: sha256.New()}
}

// run downloads with retries, then verifies and renames the file.
func (d *download) run(ctx context.Context) (err error) {
	if d.f, err = os.OpenFile(d.part, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return fmt.Errorf("cannot write to the cache directory: %w", err)
	}
	defer func() {
		if d.f != nil {
			d.f.Close()
		}
		if err != nil && d.bar != nil {
			d.bar.Exit()
		}
	}()
	if d.opts.Force {
		err = d.restart()
	} else {
		err = d.hashPartial()
	}
	if err != nil {
		return err
	}
	for attempt := 0; d.src.Size == 0 || d.have < d.src.Size; attempt++ {
		err := d.attempt(ctx)
		if err == nil {
			break
		}
		var te *transientError
		if ctx.Err() != nil || !errors.As(err, &te) || attempt >= d.opts.Retries {
			if errors.Is(err, errTooLong) {
				d.discard()
			}
			return err
		}
		wait := d.opts.Backoff
		for range attempt {
			wait = min(2*wait, maxBackoff)
		}
		if w := d.opts.Progress; w != nil {
			if d.bar != nil {
				fmt.Fprintln(w) // end the bar's line
			}
			fmt.Fprintf(w, "%s: %v; retrying in %v\n", d.name, err, wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
	return d.finish()
}

// hashPartial hashes what a previous run left in the .part file.
func (d *download) hashPartial() error {
	fi, err := d.f.Stat()
	if err != nil {
		return err
	}
	if d.src.Size > 0 && fi.Size() > d.src.Size {
		return d.restart()
	}
	if _, err := io.Copy(d.hash, io.NewSectionReader(d.f, 0, fi.Size())); err != nil {
		return fmt.Errorf("read %s: %w", d.part, err)
	}
	d.have = fi.Size()
	return nil
}

// restart empties the .part file.
func (d *download) restart() error {
	if err := d.f.Truncate(0); err != nil {
		return fmt.Errorf("truncate %s: %w", d.part, err)
	}
	d.have = 0
	d.hash.Reset()
	if d.bar != nil {
		d.bar.Reset()
	}
	return nil
}

// discard deletes the .part file, whose contents cannot be right.
func (d *download) discard() {
	d.f.Close()
	d.f = nil
	os.Remove(d.part)
}

// errTooLong reports a response longer than the expected file.
var errTooLong = errors.New("the server sent more data than expected")

// errComplete reports a 416 answer to a request for bytes past a complete
// .part file.
var errComplete = errors.New("already complete")

// attempt makes one request and appends what it receives to the .part
// file, until the body ends, fails or stalls.
func (d *download) attempt(ctx context.Context) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	stall := time.AfterFunc(d.opts.StallTimeout, func() { cancel(errStalled) })
	defer stall.Stop()

	req, err := http.NewRequestWithContext(actx, http.MethodGet, d.src.URL, nil)
	if err != nil {
		return err
	}
	if d.have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", d.have))
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return d.readErr(ctx, actx, err)
	}
	defer resp.Body.Close()
	total, err := d.accept(resp)
	if errors.Is(err, errComplete) {
		return nil
	}
	if err != nil {
		return err
	}
	d.showProgress(total)

	buf := make([]byte, 256<<10)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			stall.Reset(d.opts.StallTimeout)
			if total >= 0 && d.have+int64(n) > total {
				return fmt.Errorf("%w (%d bytes)", errTooLong, total)
			}
			if _, err := d.f.WriteAt(buf[:n], d.have); err != nil {
				return err // an *fs.PathError, which names the file
			}
			d.hash.Write(buf[:n])
			d.have += int64(n)
			if d.bar != nil {
				d.bar.Add(n)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return d.readErr(ctx, actx, fmt.Errorf("download interrupted: %w", rerr))
		}
	}
	if total >= 0 && d.have < total {
		return transient("connection closed after %d of %d bytes", d.have, total)
	}
	return nil
}

// readErr classifies a failed request or body read.
func (d *download) readErr(ctx, actx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case context.Cause(actx) == errStalled:
		return transient("no data for %v", d.opts.StallTimeout)
	}
	return &transientError{err}
}

// accept checks a response's status and headers, restarting the .part
// file when the server sends the whole file, and returns the size the
// complete file will have (-1 when unknown).
func (d *download) accept(resp *http.Response) (int64, error) {
	want := d.src.Size
	if want == 0 {
		want = -1
	}
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		total := resp.ContentLength
		if want >= 0 && total >= 0 && total != want {
			return 0, fmt.Errorf("the server announces %d bytes, expected %d", total, want)
		}
		if d.have > 0 { // the server ignored the Range header
			if err := d.restart(); err != nil {
				return 0, err
			}
		}
		return max(total, want), nil
	case code == http.StatusPartialContent:
		start, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if from := d.have; !ok || start != from {
			if err := d.restart(); err != nil {
				return 0, err
			}
			return 0, transient("bad Content-Range %q for a request from byte %d", resp.Header.Get("Content-Range"), from)
		}
		if want >= 0 && total >= 0 && total != want {
			return 0, fmt.Errorf("the server announces %d bytes, expected %d", total, want)
		}
		return max(total, want), nil
	case code == http.StatusRequestedRangeNotSatisfiable && d.have > 0:
		// Sent for a range starting at the end: the .part file may be whole.
		if _, total, _ := contentRange(resp.Header.Get("Content-Range")); total == d.have && want < 0 {
			return 0, errComplete
		}
		if err := d.restart(); err != nil {
			return 0, err
		}
		return 0, transient("the server cannot resume at byte %d", d.have)
	case code == http.StatusTooManyRequests || code >= 500:
		return 0, &transientError{d.statusError(resp)}
	default:
		return 0, d.statusError(resp)
	}
}

// statusError describes an unexpected HTTP status, naming the URL that
// answered when a redirect led elsewhere.
func (d *download) statusError(resp *http.Response) error {
	if u := resp.Request.URL.String(); u != d.src.URL {
		return fmt.Errorf("%s answered %s", u, resp.Status)
	}
	return fmt.Errorf("the server answered %s", resp.Status)
}

// contentRange parses "bytes start-end/total" (total may be "*", giving
// -1) and "bytes */total".
func contentRange(h string) (start, total int64, ok bool) {
	spec, found := strings.CutPrefix(h, "bytes ")
	if !found {
		return 0, -1, false
	}
	rng, size, found := strings.Cut(spec, "/")
	if !found {
		return 0, -1, false
	}
	total = -1
	if size != "*" {
		t, err := strconv.ParseInt(size, 10, 64)
		if err != nil || t < 0 {
			return 0, -1, false
		}
		total = t
	}
	if rng == "*" {
		return 0, total, true
	}
	first, last, found := strings.Cut(rng, "-")
	s, err1 := strconv.ParseInt(first, 10, 64)
	e, err2 := strconv.ParseInt(last, 10, 64)
	if !found || err1 != nil || err2 != nil || s < 0 || e < s || (total >= 0 && e >= total) {
		return 0, -1, false
	}
	return s, total, true
}

// showProgress creates the progress bar on the first response.
func (d *download) showProgress(total int64) {
	w := d.opts.Progress
	if w == nil || d.bar != nil {
		return
	}
	d.bar = progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(d.name),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowTotalBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSpinnerType(14),
		// No spinner goroutine: it would outlive a failed download.
		progressbar.OptionSetSpinnerChangeInterval(0),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(w) }),
	)
	d.bar.Set64(d.have)
}

// finish verifies the .part file and renames it into place.
func (d *download) finish() error {
	if d.src.Size > 0 && d.have != d.src.Size {
		return fmt.Errorf("downloaded %d bytes, expected %d", d.have, d.src.Size)
	}
	sum := hex.EncodeToString(d.hash.Sum(nil))
	if d.src.SHA256 != "" && !strings.EqualFold(sum, d.src.SHA256) {
		d.discard()
		return fmt.Errorf("%w: expected %s, got %s", ErrChecksum, strings.ToLower(d.src.SHA256), sum)
	}
	if err := d.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", d.part, err)
	}
	err := d.f.Close()
	d.f = nil
	if err != nil {
		return fmt.Errorf("close %s: %w", d.part, err)
	}
	if err := os.Rename(d.part, d.final); err != nil {
		return err
	}
	// Make the rename durable; not every system can sync a directory, and
	// the file itself is complete either way.
	if dir, err := os.Open(filepath.Dir(d.final)); err == nil {
		dir.Sync()
		dir.Close()
	}
	if d.bar != nil {
		d.bar.Finish()
	}
	return nil
}
