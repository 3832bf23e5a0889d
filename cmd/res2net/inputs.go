package main

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/res2net/res2net/pkg/preprocess"
)

// stdinName names standard input in results and errors alike.
const stdinName = "<stdin>"

// input is one image to classify, or the reason an argument could not be
// turned into images.
type input struct {
	name string // as given or found under a folder; stdinName for "-"
	err  error
}

// expandInputs turns the arguments into images in order: files as given,
// folders walked in lexical order keeping files with an image extension
// (following linked folders, never round a loop), and "-" for standard
// input. Only metadata is read: a non-regular file (a FIFO, a device) is
// refused here, so opening one can never block.
func expandInputs(args []string) []input {
	var out []input
	for _, arg := range args {
		if arg == "-" {
			out = append(out, input{name: stdinName})
			continue
		}
		fi, err := os.Stat(arg)
		switch {
		case err != nil:
			out = append(out, input{name: arg, err: fmt.Errorf("%s: %w", arg, unwrapPathError(err))})
		case fi.IsDir():
			n := len(out)
			if err := walkFolder(arg, []os.FileInfo{fi}, &out); err != nil {
				out = append(out, input{name: arg, err: err})
			} else if len(out) == n {
				out = append(out, input{name: arg, err: fmt.Errorf("%s: no image files in folder", arg)})
			}
		default:
			out = append(out, input{name: arg, err: checkRegular(arg, fi)})
		}
	}
	return out
}

// walkFolder appends the images under dir, in lexical order; ancestors are
// the folders on the way down, to recognise a link back up.
func walkFolder(dir string, ancestors []os.FileInfo, out *[]input) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("%s: %w", dir, unwrapPathError(err))
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		var fi os.FileInfo
		if e.Type()&fs.ModeSymlink != 0 || e.IsDir() {
			fi, err = os.Stat(p) // through the link
			if err != nil {
				if preprocess.IsImageName(p) {
					*out = append(*out, input{name: p, err: fmt.Errorf("%s: %w", p, unwrapPathError(err))})
				}
				continue
			}
		}
		if fi != nil && fi.IsDir() {
			if onPath(fi, ancestors) {
				continue // a link to a folder above: following it would loop
			}
			if err := walkFolder(p, append(ancestors, fi), out); err != nil {
				*out = append(*out, input{name: p, err: err})
			}
			continue
		}
		if !preprocess.IsImageName(p) {
			continue
		}
		if fi == nil {
			if fi, err = e.Info(); err != nil {
				*out = append(*out, input{name: p, err: fmt.Errorf("%s: %w", p, unwrapPathError(err))})
				continue
			}
		}
		*out = append(*out, input{name: p, err: checkRegular(p, fi)})
	}
	return nil
}

func onPath(fi os.FileInfo, ancestors []os.FileInfo) bool {
	for _, a := range ancestors {
		if os.SameFile(fi, a) {
			return true
		}
	}
	return false
}

// checkRegular refuses what is not a regular file: reading a FIFO or a
// device blocks or never ends.
func checkRegular(path string, fi os.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%s: %s, not a regular file", path, describeMode(fi.Mode()))
}

func describeMode(m fs.FileMode) string {
	switch {
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m.IsDir():
		return "a folder"
	}
	return "a special file"
}

// unwrapPathError drops the *fs.PathError around err, whose text repeats
// the path the caller already names: "x.jpg: no such file or directory".
func unwrapPathError(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}

// openImage opens a file checked by expandInputs for reading, refusing it
// if it has been replaced by something other than a regular file since:
// the open does not wait for a FIFO's writer (see openNonBlocking).
func openImage(path string) (*os.File, error) {
	f, err := openNonBlocking(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, unwrapPathError(err))
	}
	fi, err := f.Stat()
	if err == nil {
		err = checkRegular(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// maxListLine bounds one line of a --files-from list.
const maxListLine = 64 << 10

// readFileList reads paths, one a line, skipping blank lines; name
// identifies the list in errors.
func readFileList(r io.Reader, name string) ([]string, error) {
	var paths []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), maxListLine)
	for sc.Scan() {
		if line := strings.TrimRight(sc.Text(), "\r"); strings.TrimSpace(line) != "" {
			paths = append(paths, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--files-from %s: %w", name, err)
	}
	return paths, nil
}
