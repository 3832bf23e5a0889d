package download

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// StampSuffix ends the name of the file beside a cached file that records
// what was verified: <name>.stamp.
const StampSuffix = ".stamp"

// maxStampSize bounds what readStamp reads: a stamp is a line of JSON.
const maxStampSize = 4 << 10

// stamp records a verified file's digest with the size and modification
// time it had then, so a later check costs a stat instead of a hash.
type stamp struct {
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	ModTime int64  `json:"mtime_ns"`       // Unix nanoseconds
	From    string `json:"from,omitempty"` // the URL or file it came from
}

// ErrUnverified reports a cached file that cannot be checked without the
// network: nothing records its digest, and only the hub knows it.
var ErrUnverified = errors.New("no recorded digest to verify it against")

// Verify reports whether the file at path may be used as src's content: it
// is a regular file whose size and SHA-256 match what src knows. The first
// check hashes the file and records the result in <path>.stamp; later
// checks compare its size and modification time with the stamp and hash
// nothing. The error wraps fs.ErrNotExist for a missing file, ErrSize or
// ErrChecksum for one that differs, and ErrUnverified for a hub file that
// nothing vouches for yet.
func Verify(path string, src Source) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err // an *fs.PathError, which names the file
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if err := checkStamp(path, fi, src); !errors.Is(err, ErrUnverified) {
		return err
	}
	if src.Size > 0 && fi.Size() != src.Size {
		return fmt.Errorf("%s: %w", path, src.Check("", fi.Size()))
	}
	if src.Hub && src.SHA256 == "" {
		return fmt.Errorf("%s: %w", path, ErrUnverified)
	}
	sum, err := SHA256File(path)
	if err != nil {
		return err
	}
	if err := src.Check(sum, fi.Size()); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// A cache that cannot be written to still serves the file: the stamp
	// only saves the next check a hash.
	writeStamp(path, sum, src.URL)
	return nil
}

// VerifyStamp is Verify without the hash: it answers from the stamp alone,
// and wraps ErrUnverified when there is no stamp that matches the file's
// size and modification time.
func VerifyStamp(path string, src Source) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	return checkStamp(path, fi, src)
}

// checkStamp checks src against the stamp beside path, which must record
// fi's size and modification time.
func checkStamp(path string, fi os.FileInfo, src Source) error {
	st, ok := readStamp(path)
	if !ok || st.Size != fi.Size() || st.ModTime != fi.ModTime().UnixNano() {
		return fmt.Errorf("%s: %w", path, ErrUnverified)
	}
	if err := src.Check(st.SHA256, st.Size); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// readStamp reads the stamp beside path; ok is false when there is none
// or it cannot be parsed.
func readStamp(path string) (st stamp, ok bool) {
	f, err := os.Open(path + StampSuffix)
	if err != nil {
		return st, false
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxStampSize))
	if err != nil || json.Unmarshal(b, &st) != nil || !IsSHA256(st.SHA256) {
		return st, false
	}
	st.SHA256 = strings.ToLower(st.SHA256)
	return st, true
}

// writeStamp records that the file at path, as it is now, has digest sum.
// It writes a temporary file of its own and renames it, so that a reader
// never sees half a stamp, even with other processes stamping at once.
func writeStamp(path, sum, from string) error {
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	b, err := json.Marshal(stamp{SHA256: sum, Size: fi.Size(), ModTime: fi.ModTime().UnixNano(), From: from})
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+StampSuffix+".*.tmp")
	if err != nil {
		return err
	}
	_, err = tmp.Write(append(b, '\n'))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path+StampSuffix)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
