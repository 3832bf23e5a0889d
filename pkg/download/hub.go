package download

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// Headers of a Hugging Face hub "resolve" answer for a file stored in LFS.
const (
	hubEtagHeader = "X-Linked-Etag" // the SHA-256 of the file, quoted
	hubSizeHeader = "X-Linked-Size" // its length in bytes
)

// hubFile is what a hub's HEAD answer says of a file.
type hubFile struct {
	sha256   string
	size     int64
	location string // where the bytes are; "" when the URL itself serves them
}

// resolveHub asks the hub for src's digest, size and location with HEAD
// requests that do not follow redirects. A redirect without the hub's
// headers (a renamed repository) is followed, within the same rules as a
// download's redirects; the first answer that carries X-Linked-Etag is the
// file's. A server answering 200 without it is a plain file server, which
// the download can use only when src.SHA256 is known.
func resolveHub(ctx context.Context, client *http.Client, src Source) (hubFile, error) {
	head := *client
	head.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	var via []*http.Request
	u := src.URL
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, u, nil)
		if err != nil {
			return hubFile{}, err
		}
		if err := checkRedirect(req, via); err != nil {
			return hubFile{}, err
		}
		resp, err := head.Do(req)
		if err != nil {
			return hubFile{}, &transientError{err}
		}
		resp.Body.Close()
		via = append(via, req)
		redirect := resp.StatusCode >= 300 && resp.StatusCode < 400
		switch {
		case resp.Header.Get(hubEtagHeader) != "":
			return hubAnswer(resp, redirect)
		case redirect:
			loc, err := resp.Location()
			if err != nil {
				return hubFile{}, fmt.Errorf("%s answered %s without a valid Location: %v", u, resp.Status, err)
			}
			u = loc.String()
		case resp.StatusCode == http.StatusOK && src.SHA256 != "":
			return hubFile{sha256: strings.ToLower(src.SHA256), size: max(resp.ContentLength, 0), location: u}, nil
		case resp.StatusCode == http.StatusOK:
			return hubFile{}, fmt.Errorf("%s announces no %s, so the file cannot be verified: give its SHA-256", u, hubEtagHeader)
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
			return hubFile{}, transient("%s answered %s", u, resp.Status)
		default:
			return hubFile{}, fmt.Errorf("%s answered %s", u, resp.Status)
		}
	}
}

// hubAnswer reads the hub's headers from a HEAD answer.
func hubAnswer(resp *http.Response, redirect bool) (hubFile, error) {
	u := resp.Request.URL.Redacted()
	etag := resp.Header.Get(hubEtagHeader)
	sum := strings.Trim(strings.TrimPrefix(etag, "W/"), `"`)
	if !IsSHA256(sum) {
		return hubFile{}, fmt.Errorf("%s announces %s %q, which is not a SHA-256", u, hubEtagHeader, etag)
	}
	size, err := strconv.ParseInt(resp.Header.Get(hubSizeHeader), 10, 64)
	if err != nil || size <= 0 {
		return hubFile{}, fmt.Errorf("%s announces %s %q, which is not a size", u, hubSizeHeader, resp.Header.Get(hubSizeHeader))
	}
	f := hubFile{sha256: strings.ToLower(sum), size: size, location: resp.Request.URL.String()}
	if redirect {
		loc, err := resp.Location()
		if err != nil {
			return hubFile{}, fmt.Errorf("%s answered %s without a valid Location: %v", u, resp.Status, err)
		}
		if !httpScheme(loc) {
			return hubFile{}, fmt.Errorf("%w: %s redirects to %s", ErrRedirect, u, loc.Redacted())
		}
		f.location = loc.String()
	} else if resp.StatusCode != http.StatusOK {
		return hubFile{}, statusErr(resp.StatusCode, fmt.Errorf("%s answered %s", u, resp.Status))
	}
	return f, nil
}

// statusErr marks err transient when the status is worth retrying.
func statusErr(code int, err error) error {
	if code == http.StatusTooManyRequests || code >= 500 {
		return &transientError{err}
	}
	return err
}

// ErrRedirect reports a redirect that no retry can mend: a loop, too long
// a chain, or a target that is not http(s).
var ErrRedirect = errors.New("bad redirect")

// maxRedirects is the longest redirect chain followed, as in net/http.
const maxRedirects = 10

// checkRedirect refuses a redirect to a URL already visited, past
// maxRedirects hops, or to a scheme other than http(s) (file://, ftp://).
func checkRedirect(req *http.Request, via []*http.Request) error {
	if !httpScheme(req.URL) {
		return fmt.Errorf("%w to %s: not an http(s) URL", ErrRedirect, req.URL.Redacted())
	}
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: stopped after %d redirects", ErrRedirect, maxRedirects)
	}
	for _, v := range via {
		if v.URL.String() == req.URL.String() {
			return fmt.Errorf("%w: a redirect loop back to %s", ErrRedirect, req.URL.Redacted())
		}
	}
	return nil
}

// withRedirectCheck returns a copy of client that applies checkRedirect
// before the client's own policy.
func withRedirectCheck(client *http.Client) *http.Client {
	c := *client
	own := client.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if err := checkRedirect(req, via); err != nil {
			return err
		}
		if own != nil {
			return own(req, via)
		}
		return nil
	}
	return &c
}
