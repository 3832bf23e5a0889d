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
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
)

// Defaults of Options.
const (
	DefaultRetries      = 4
	DefaultStallTimeout = 30 * time.Second
	DefaultBackoff      = time.Second
	// DefaultMaxSize caps a file of unknown size: ten times the largest
	// Res2Net checkpoint, and far from filling a disk by mistake.
	DefaultMaxSize = 2 << 30
	// DefaultMinRate is the slowest transfer accepted, in bytes per second:
	// a trickle below it would take days over a checkpoint.
	DefaultMinRate = 4 << 10
	maxBackoff     = time.Minute
)

// Options tune Fetch. The zero value is ready to use.
type Options struct {
	// Force downloads the file again even when a verified copy exists.
	Force bool
	// Progress, when not nil, receives a progress bar (bytes, rate, ETA)
	// and retry notices. Pass a terminal, not a log file.
	Progress io.Writer
	// Client makes the requests; nil means http.DefaultClient. Redirect
	// loops, chains of more than 10 hops and redirects to other schemes
	// than http(s) fail for good, whatever its CheckRedirect.
	Client *http.Client
	// Retries is how many times a transient failure (network error, HTTP
	// 429 or 5xx, stall, connection cut) is retried: 0 means
	// DefaultRetries, a negative value none.
	Retries int
	// StallTimeout is the window over which the transfer rate is
	// measured: an attempt that receives nothing, or less than MinRate on
	// average, within any such window is abandoned. 0 means
	// DefaultStallTimeout.
	StallTimeout time.Duration
	// MinRate is the slowest average rate accepted over each StallTimeout
	// window, in bytes per second: 0 means DefaultMinRate, a negative
	// value any rate above nothing.
	MinRate int64
	// MaxSize caps the bytes accepted for a file whose size the caller
	// does not know (Source.Size 0): what the body brings, and the size a
	// server or the hub announces, or a file to import has. 0 means
	// DefaultMaxSize, a negative value no cap.
	MaxSize int64
	// Backoff is the wait before the first retry, doubled for each further
	// one (at most a minute); 0 means DefaultBackoff.
	Backoff time.Duration
}

// ErrTooLarge reports a file whose size the caller did not know that is,
// or is announced to be, over Options.MaxSize.
var ErrTooLarge = errors.New("larger than the size limit")

// Fetch downloads src.URL into dir (created if needed) and returns the
// path of the file, named src.Name or else after the last element of the
// URL path.
//
// A file already there that Verify accepts is returned without network
// access, unless opts.Force is set. Otherwise the data goes to <name>.part
// in dir, hashed as it streams; an interrupted download (error, stall,
// cancelled ctx) leaves the .part file, which the next call resumes with an
// HTTP Range request. The file is renamed into place only once its size and
// hash are verified, and a <name>.stamp beside it records its digest; on a
// hash mismatch the .part file is deleted, and so is an empty one. A
// <name>.lock file, removed when done, serialises concurrent calls,
// including from other processes.
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
		if _, err := os.Stat(final); err != nil {
			// Missing, or unreachable: creating the directory and the
			// lock file will report the problem more clearly.
			return false, nil
		}
		return usable(Verify(final, src))
	}
	switch ok, err := cached(); {
	case err != nil:
		return fail(err)
	case ok:
		return final, nil
	}
	unlock, err := lockIn(ctx, dir, final, opts.Progress)
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

// usable sorts Verify's answer: true for a verified file, false for one
// to download again (missing, different, unverifiable), an error for a
// path that cannot hold the file (a folder, a file that cannot be read).
func usable(err error) (bool, error) {
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist), errors.Is(err, ErrSize), errors.Is(err, ErrChecksum), errors.Is(err, ErrUnverified):
		return false, nil
	}
	return false, err
}

// ErrNoHubDigest reports a hub file to import whose digest the hub could
// not be asked for.
var ErrNoHubDigest = errors.New("verifying it needs the digest the hub announces")

// Import verifies the local file at from as src's content and copies it
// into dir (created if needed) under the name Fetch would give it, with
// its stamp, and returns that path. For a hub source whose digest is not
// known, the hub is asked for it (a HEAD request, no download), and the
// error wraps ErrNoHubDigest when that fails. A file that does not match
// is an error wrapping ErrSize or ErrChecksum, and leaves nothing in dir.
func Import(ctx context.Context, src Source, dir, from string, opts Options) (string, error) {
	fail := func(err error) (string, error) { return "", fmt.Errorf("import %s: %w", from, err) }
	name, err := src.FileName()
	if err != nil {
		return fail(err)
	}
	final := filepath.Join(dir, name)
	fi, err := os.Stat(from)
	if err != nil {
		return fail(err)
	}
	if !fi.Mode().IsRegular() {
		return fail(errors.New("not a regular file"))
	}
	if src.Size > 0 && fi.Size() != src.Size {
		return fail(src.Check("", fi.Size()))
	}
	unlock, err := lockIn(ctx, dir, final, opts.Progress)
	if err != nil {
		return fail(err)
	}
	defer unlock()
	d := newDownload(src, final, name, opts)
	d.from = from
	if src.Size == 0 && d.opts.MaxSize > 0 && fi.Size() > d.opts.MaxSize {
		return fail(fmt.Errorf("%w of %d bytes: the file has %d", ErrTooLarge, d.opts.MaxSize, fi.Size()))
	}
	if src.Hub && src.SHA256 == "" {
		if err := d.retry(ctx, d.resolve); err != nil {
			return fail(fmt.Errorf("%w: %w", ErrNoHubDigest, err))
		}
	}
	if cached, err := os.Stat(final); err == nil && os.SameFile(fi, cached) {
		if err := Verify(final, d.src); err != nil {
			return fail(err)
		}
		return final, nil
	}
	if err := d.copyFrom(ctx, from); err != nil {
		return fail(err)
	}
	return final, nil
}

// transientError marks a failure worth retrying.
type transientError struct{ err error }

func (e *transientError) Error() string { return e.err.Error() }
func (e *transientError) Unwrap() error { return e.err }

func transient(format string, args ...any) error {
	return &transientError{fmt.Errorf(format, args...)}
}

// errStalled and errTooSlow cancel an attempt whose transfer rate fell
// below the minimum.
var (
	errStalled = errors.New("stalled")
	errTooSlow = errors.New("too slow")
)

// download is one Fetch or Import in progress.
type download struct {
	src               Source
	final, part, name string
	opts              Options
	client            *http.Client
	get               string // the URL the bytes come from: src.URL, or where the hub points
	from              string // what the stamp records as the origin

	f    *os.File  // the .part file, once open
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
	if opts.MinRate == 0 {
		opts.MinRate = DefaultMinRate
	}
	if opts.MaxSize == 0 {
		opts.MaxSize = DefaultMaxSize
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	client := opts.Client
	if client == nil {
		client = http.DefaultClient
	}
	return &download{src: src, final: final, part: final + ".part", name: name, opts: opts,
		client: withRedirectCheck(client), get: src.URL, from: src.URL, hash: sha256.New()}
}

// run downloads with retries, then verifies and renames the file.
func (d *download) run(ctx context.Context) (err error) {
	if d.src.Hub {
		if err := d.retry(ctx, d.resolve); err != nil {
			return err
		}
		// The file in the cache may be this one, of a digest unknown until now.
		if ok, _ := usable(Verify(d.final, d.src)); ok && !d.opts.Force {
			return nil
		}
	}
	if err := d.openPart(); err != nil {
		return err
	}
	defer func() {
		if err != nil && d.f != nil && d.have == 0 {
			d.discard() // nothing worth resuming
		}
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
	if d.src.Size == 0 || d.have < d.src.Size {
		if err := d.retry(ctx, d.attempt); err != nil {
			if errors.Is(err, errTooLong) || errors.Is(err, ErrTooLarge) {
				d.discard()
			}
			return err
		}
	}
	return d.finish()
}

// openPart opens (creating) the .part file.
func (d *download) openPart() (err error) {
	if d.f, err = os.OpenFile(d.part, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return fmt.Errorf("cannot write to the cache directory: %w", err)
	}
	return nil
}

// retry runs op until it succeeds, fails for good, or has failed
// transiently Retries+1 times, waiting longer after each failure.
func (d *download) retry(ctx context.Context, op func(context.Context) error) error {
	for attempt := 0; ; attempt++ {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var te *transientError
		if !errors.As(err, &te) || attempt >= d.opts.Retries {
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
}

// resolve learns the file's digest, size and location from the hub, and
// checks them against what src already knows.
func (d *download) resolve(ctx context.Context) error {
	hctx, cancel := context.WithTimeout(ctx, d.opts.StallTimeout)
	defer cancel()
	f, err := resolveHub(hctx, d.client, d.src)
	if err != nil {
		if ctx.Err() == nil && hctx.Err() != nil {
			return transient("no answer from %s for %v", d.src.URL, d.opts.StallTimeout)
		}
		return err
	}
	if d.src.SHA256 != "" && !strings.EqualFold(f.sha256, d.src.SHA256) {
		return fmt.Errorf("%w: the hub announces %s, expected %s", ErrChecksum, f.sha256, strings.ToLower(d.src.SHA256))
	}
	if d.src.Size > 0 && f.size > 0 && f.size != d.src.Size {
		return fmt.Errorf("%w: the hub announces %d bytes, expected %d", ErrSize, f.size, d.src.Size)
	}
	if d.src.Size == 0 && d.opts.MaxSize > 0 && f.size > d.opts.MaxSize {
		return fmt.Errorf("%w of %d bytes: the hub announces %d", ErrTooLarge, d.opts.MaxSize, f.size)
	}
	d.src.SHA256 = f.sha256
	if f.size > 0 {
		d.src.Size = f.size
	}
	d.get = f.location
	return nil
}

// copyFrom copies the local file at path into the .part file, hashing it,
// then verifies and renames it into place.
func (d *download) copyFrom(ctx context.Context, path string) (err error) {
	in, err := os.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := d.openPart(); err != nil {
		return err
	}
	defer func() {
		if err != nil { // a copy can start again at no cost
			if d.f != nil {
				d.f.Close()
				d.f = nil
			}
			os.Remove(d.part)
		}
	}()
	if err := d.restart(); err != nil {
		return err
	}
	n, err := io.Copy(io.MultiWriter(d.f, d.hash), ctxReader{ctx, in})
	d.have = n
	if err != nil {
		return err // names the file: an *fs.PathError, or ctx's error
	}
	return d.finish()
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
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
// file, until the body ends, fails or falls below the minimum rate.
func (d *download) attempt(ctx context.Context) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	rate := newRateWatch(d.opts.StallTimeout, d.opts.MinRate, cancel)
	defer rate.stop()

	req, err := http.NewRequestWithContext(actx, http.MethodGet, d.get, nil)
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
			rate.add(n)
			if total >= 0 && d.have+int64(n) > total {
				return fmt.Errorf("%w (%d bytes)", errTooLong, total)
			}
			if total < 0 && d.opts.MaxSize > 0 && d.have+int64(n) > d.opts.MaxSize {
				return fmt.Errorf("%w of %d bytes, and its size was not announced", ErrTooLarge, d.opts.MaxSize)
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
	switch cause := context.Cause(actx); {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(cause, errStalled):
		return transient("no data for %v", d.opts.StallTimeout)
	case errors.Is(cause, errTooSlow):
		return &transientError{cause}
	case errors.Is(err, ErrRedirect):
		return err
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
		if err := d.checkLimit(want, total); err != nil {
			return 0, err
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
		if err := d.checkLimit(want, total); err != nil {
			return 0, err
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

// checkLimit refuses a file of no expected size whose announced size is
// over the cap.
func (d *download) checkLimit(want, total int64) error {
	if want < 0 && total > d.opts.MaxSize && d.opts.MaxSize > 0 {
		return fmt.Errorf("%w of %d bytes: the server announces %d", ErrTooLarge, d.opts.MaxSize, total)
	}
	return nil
}

// statusError describes an unexpected HTTP status, naming the URL that
// answered when a redirect led elsewhere (without its query, where signed
// URLs keep their credentials).
func (d *download) statusError(resp *http.Response) error {
	if u := resp.Request.URL; u.String() != d.src.URL {
		shown := *u
		shown.RawQuery, shown.ForceQuery = "", false
		return fmt.Errorf("%s answered %s", shown.Redacted(), resp.Status)
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

// finish verifies the .part file, renames it into place and stamps it.
func (d *download) finish() error {
	sum := hex.EncodeToString(d.hash.Sum(nil))
	if err := d.src.Check(sum, d.have); err != nil {
		if errors.Is(err, ErrChecksum) {
			d.discard()
		}
		return err
	}
	// The old stamp must not vouch for the new file, even for a moment.
	if err := os.Remove(d.final + StampSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
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
	// Without its stamp the file is hashed again on its next use: a
	// cost, not an error.
	writeStamp(d.final, sum, d.from)
	if d.bar != nil {
		d.bar.Finish()
	}
	return nil
}
