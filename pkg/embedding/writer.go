package embedding

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/res2net/res2net/internal/npy"
)

// Format is a file format for embeddings.
type Format string

// The formats Writer writes.
const (
	// NPY is a NumPy N x D float32 array; the file names go to a separate
	// list, one per line, in row order.
	NPY Format = "npy"
	// JSONL is one {"file": ..., "embedding": [...]} object per line.
	JSONL Format = "jsonl"
	// CSV is a header "file,f0,f1,...,error" then one row per image.
	CSV Format = "csv"
)

// FormatOf picks the format from a file name's extension (.npy, .jsonl or
// .json, .csv; case-insensitive).
func FormatOf(name string) (Format, error) {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".npy":
		return NPY, nil
	case ".jsonl", ".json":
		return JSONL, nil
	case ".csv":
		return CSV, nil
	}
	return "", fmt.Errorf("%s: unknown embedding format (use .npy, .jsonl or .csv)", name)
}

// Writer writes one embedding per image in a Format, and, in JSONL and CSV,
// a record for each image that could not be embedded. JSONL and CSV rows
// are written as they come (CSV error rows wait for the first embedding,
// which sets the header); NPY needs the row count in its header, so its
// rows are kept until Close.
type Writer struct {
	w      io.Writer
	names  io.Writer // NPY only: the file list
	format Format
	dim    int // values per embedding, from the first
	enc    *json.Encoder
	csv    *csv.Writer
	files  []string
	rows   []float32
	failed [][2]string // CSV error rows (file, error) before the header
}

// NewWriter returns a Writer of format to w. For NPY, names receives the
// file names, one per line, when the Writer is closed; for the other
// formats it is ignored.
func NewWriter(w io.Writer, format Format, names io.Writer) (*Writer, error) {
	ew := &Writer{w: w, names: names, format: format}
	switch format {
	case JSONL:
		ew.enc = json.NewEncoder(w)
		ew.enc.SetEscapeHTML(false) // file names as they are: <stdin>, a&b.jpg
	case CSV:
		ew.csv = csv.NewWriter(w)
	case NPY:
		if names == nil {
			return nil, fmt.Errorf("embedding: .npy output needs a writer for the file list")
		}
	default:
		return nil, fmt.Errorf("embedding: unknown format %q", format)
	}
	return ew, nil
}

// record is one JSON Lines row.
type record struct {
	File      string    `json:"file"`
	Embedding []float32 `json:"embedding,omitempty"` // float32: JSON prints it short
	Error     string    `json:"error,omitempty"`
}

// Write adds the embedding of one image. Every embedding must have the
// length of the first.
func (ew *Writer) Write(file string, v []float32) error {
	if ew.dim == 0 {
		if len(v) == 0 {
			return fmt.Errorf("embedding: %s: empty embedding", file)
		}
		ew.dim = len(v)
		if ew.csv != nil {
			if err := ew.csvHeader(); err != nil {
				return err
			}
		}
	}
	if len(v) != ew.dim {
		return fmt.Errorf("embedding: %s: %d values, the first image had %d", file, len(v), ew.dim)
	}
	switch ew.format {
	case JSONL:
		return ew.enc.Encode(record{File: file, Embedding: v})
	case CSV:
		row := make([]string, 2+len(v))
		row[0] = file
		for i, x := range v {
			row[1+i] = strconv.FormatFloat(float64(x), 'g', -1, 32)
		}
		ew.csv.Write(row)
		ew.csv.Flush()
		return ew.csv.Error()
	}
	if strings.ContainsAny(file, "\n\r") {
		return fmt.Errorf("embedding: file name %q cannot go in a one-per-line list", file)
	}
	ew.files = append(ew.files, file)
	ew.rows = append(ew.rows, v...)
	return nil
}

// WriteError records that file could not be embedded: a JSONL record with
// its error, or a CSV row with only the file and error columns. NPY keeps
// no record (its file list names the rows).
func (ew *Writer) WriteError(file string, err error) error {
	switch ew.format {
	case JSONL:
		return ew.enc.Encode(record{File: file, Error: err.Error()})
	case CSV:
		if ew.dim == 0 {
			ew.failed = append(ew.failed, [2]string{file, err.Error()})
			return nil
		}
		return ew.csvError(file, err.Error())
	}
	return nil
}

// csvHeader writes the CSV header, then the error rows that waited for it.
func (ew *Writer) csvHeader() error {
	header := make([]string, 2+ew.dim)
	header[0], header[1+ew.dim] = "file", "error"
	for i := range ew.dim {
		header[1+i] = "f" + strconv.Itoa(i)
	}
	ew.csv.Write(header)
	for _, f := range ew.failed {
		if err := ew.csvError(f[0], f[1]); err != nil {
			return err
		}
	}
	ew.failed = nil
	ew.csv.Flush()
	return ew.csv.Error()
}

func (ew *Writer) csvError(file, msg string) error {
	row := make([]string, 2+ew.dim)
	row[0], row[1+ew.dim] = file, msg
	ew.csv.Write(row)
	ew.csv.Flush()
	return ew.csv.Error()
}

// Close finishes the output: for NPY it writes the array (N x D, 0 x 0
// when empty) and the file list.
func (ew *Writer) Close() error {
	if ew.format != NPY {
		if ew.csv != nil {
			if ew.dim == 0 && len(ew.failed) > 0 {
				return ew.csvHeader() // "file,error": no image was embedded
			}
			ew.csv.Flush()
			return ew.csv.Error()
		}
		return nil
	}
	if err := npy.Write(ew.w, ew.rows, len(ew.files), ew.dim); err != nil {
		return err
	}
	var b strings.Builder
	for _, f := range ew.files {
		b.WriteString(f)
		b.WriteByte('\n')
	}
	_, err := io.WriteString(ew.names, b.String())
	return err
}
