package download

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Source identifies a file to download and how to verify it.
type Source struct {
	URL string
	// SHA256 is the expected hex digest; "" when unknown.
	SHA256 string
	// SHA256Prefix is the expected start of the hex digest when the whole
	// digest is not known: torch.hub's rule for published checkpoints, whose
	// file names end in it (see HashPrefix). "" for none.
	SHA256Prefix string
	// Size is the expected length in bytes; 0 when unknown.
	Size int64
	// Name is the file's name in the cache directory, so that a mirror's
	// download lands where the published file would; "" means the last
	// element of the URL path. It must be a plain file name.
	Name string
	// Hub marks a Hugging Face hub "resolve" URL: a HEAD request, answered
	// without following its redirect, announces the file's SHA-256
	// (X-Linked-Etag) and size (X-Linked-Size), and the bytes come from the
	// redirect's Location.
	Hub bool
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
	if !httpScheme(u) || name == "/" || name == "." || name == ".." {
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

func httpScheme(u *url.URL) bool { return u.Scheme == "http" || u.Scheme == "https" }

// minHashPrefix is the shortest file-name suffix HashPrefix takes for a
// hash: torch.hub's published names carry 8 digits, and fewer would verify
// next to nothing.
const minHashPrefix = 6

// HashPrefix returns the SHA-256 prefix a torch.hub file name carries: the
// part after the last '-', up to the extension, when it is 6 to 64
// lower-case hex digits ("res2net50_26w_4s-06e79181.pth" gives
// "06e79181"); "" when the name carries none.
func HashPrefix(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return ""
	}
	p, _, _ := strings.Cut(name[i+1:], ".")
	if len(p) < minHashPrefix || len(p) > sha256.Size*2 {
		return ""
	}
	for _, c := range p {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return ""
		}
	}
	return p
}

// ErrChecksum reports a file whose SHA-256 differs from the expected one.
var ErrChecksum = errors.New("sha256 mismatch")

// ErrSize reports a file whose length differs from the expected one.
var ErrSize = errors.New("size mismatch")

// Check reports whether a file of this size and hex digest is src's
// content: nil, or an error wrapping ErrSize or ErrChecksum.
func (src Source) Check(sum string, size int64) error {
	if src.Size > 0 && size != src.Size {
		return fmt.Errorf("%w: %d bytes, expected %d", ErrSize, size, src.Size)
	}
	if src.SHA256 != "" && !strings.EqualFold(sum, src.SHA256) {
		return fmt.Errorf("%w: expected %s, got %s", ErrChecksum, strings.ToLower(src.SHA256), sum)
	}
	if p := src.SHA256Prefix; p != "" && !strings.HasPrefix(sum, strings.ToLower(p)) {
		return fmt.Errorf("%w: expected a digest starting %s, got %s", ErrChecksum, strings.ToLower(p), sum)
	}
	return nil
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

// IsSHA256 reports whether s is a SHA-256 hex digest: 64 hex digits, in
// either case.
func IsSHA256(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}
