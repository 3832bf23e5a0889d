package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/res2net/res2net/pkg/classify"
)

// predictFormats are predict's output formats, the default first.
var predictFormats = []string{"text", "json", "csv"}

// csvHeader is the first row of CSV output; error is empty for a
// classified file, and the only filled column but file for a failed one.
var csvHeader = []string{"file", "rank", "index", "label", "probability", "logit", "error"}

// formatFromExt picks the output format for -o path: .json/.jsonl/.ndjson
// and .csv by their extension, text otherwise.
func formatFromExt(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json", ".jsonl", ".ndjson":
		return "json"
	case ".csv":
		return "csv"
	}
	return "text"
}

// recordWriter writes records in one of the output formats.
type recordWriter struct {
	w          *bufio.Writer
	format     string
	csv        *csv.Writer
	rankWidth  int // digits of the largest rank, to align the text table
	labelWidth int
}

func newRecordWriter(w io.Writer, format string, topk int, labels []string) *recordWriter {
	p := &recordWriter{w: bufio.NewWriter(w), format: format}
	p.rankWidth = len(strconv.Itoa(min(topk, max(1, len(labels)))))
	for _, l := range labels {
		p.labelWidth = max(p.labelWidth, len(l))
	}
	if format == "csv" {
		p.csv = csv.NewWriter(p.w)
	}
	return p
}

// header writes what comes before the first record.
func (p *recordWriter) header() error {
	if p.csv != nil {
		return p.csv.Write(csvHeader)
	}
	return nil
}

// write writes one record; a failed one appears in JSON and CSV only (text
// output is for reading, and the error is on stderr).
func (p *recordWriter) write(r classify.Record) error {
	switch p.format {
	case "json":
		// File names as they are: "<stdin>", not "\u003cstdin\u003e".
		enc := json.NewEncoder(p.w)
		enc.SetEscapeHTML(false)
		return enc.Encode(r)
	case "csv":
		if r.Error != "" {
			return p.csv.Write([]string{r.File, "", "", "", "", "", r.Error})
		}
		for _, pr := range r.Predictions {
			row := []string{r.File, strconv.Itoa(pr.Rank), strconv.Itoa(pr.Index), pr.Label,
				pr.Probability.String(), pr.Logit.String(), ""}
			if err := p.csv.Write(row); err != nil {
				return err
			}
		}
		return nil
	}
	if r.Error != "" {
		return nil
	}
	fmt.Fprintln(p.w, r.File)
	for _, pr := range r.Predictions {
		_, err := fmt.Fprintf(p.w, "  %*d  %-*s %6.2f%%\n", p.rankWidth, pr.Rank, p.labelWidth, pr.Label, 100*pr.Probability)
		if err != nil {
			return err
		}
	}
	return nil
}

// flush pushes what is buffered to the underlying writer.
func (p *recordWriter) flush() error {
	if p.csv != nil {
		p.csv.Flush()
		if err := p.csv.Error(); err != nil {
			return err
		}
	}
	return p.w.Flush()
}

// outputFile is -o FILE: records go to a temporary file beside it, renamed
// over FILE when the run ends, so FILE is never seen half-written. It is
// renamed also when the run fails or is interrupted, then holding the
// records completed, which --resume picks up.
type outputFile struct {
	path string
	tmp  *os.File
}

func createOutput(path string) (*outputFile, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.part")
	if err != nil {
		return nil, fmt.Errorf("-o %s: %w", path, err)
	}
	return &outputFile{path: path, tmp: tmp}, nil
}

func (o *outputFile) Write(b []byte) (int, error) { return o.tmp.Write(b) }

// commit syncs the records and renames them into place.
func (o *outputFile) commit() error {
	err := o.tmp.Sync()
	if cerr := o.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		// CreateTemp makes the file 0600; results are no secret.
		err = os.Chmod(o.tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(o.tmp.Name(), o.path)
	}
	if err != nil {
		os.Remove(o.tmp.Name())
		return fmt.Errorf("-o %s: %w", o.path, err)
	}
	return nil
}

// discard removes the temporary file, leaving FILE as it was.
func (o *outputFile) discard() {
	o.tmp.Close()
	os.Remove(o.tmp.Name())
}

// carryOver copies the classified records of an earlier run's output at
// path into p for --resume and returns the files they cover. A missing file
// is an empty result; failed records are dropped, so those files are tried
// again. The file is streamed, not read whole.
func carryOver(path string, p *recordWriter) (map[string]bool, error) {
	done := map[string]bool{}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return done, nil
	}
	if err != nil {
		return nil, fmt.Errorf("--resume: %w", err)
	}
	defer f.Close()
	switch p.format {
	case "json":
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 64<<10), maxRecordLine)
		for line := 1; sc.Scan(); line++ {
			if len(strings.TrimSpace(sc.Text())) == 0 {
				continue
			}
			var r classify.Record
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.File == "" {
				return nil, fmt.Errorf("--resume: %s line %d is not a predict result", path, line)
			}
			if r.Error == "" {
				done[r.File] = true
				p.w.Write(sc.Bytes())
				p.w.WriteByte('\n')
			}
		}
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("--resume: %s: %w", path, err)
		}
	case "csv":
		rd := csv.NewReader(bufio.NewReader(f))
		head, err := rd.Read()
		if err == io.EOF {
			return done, nil
		}
		if err != nil || strings.Join(head, ",") != strings.Join(csvHeader, ",") {
			return nil, fmt.Errorf("--resume: %s does not start with predict's CSV header", path)
		}
		for {
			row, err := rd.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("--resume: %s: %w", path, err)
			}
			if row[6] == "" {
				done[row[0]] = true
				if err := p.csv.Write(row); err != nil {
					return nil, err
				}
			}
		}
	default:
		return nil, usageErrorf("--resume needs JSON or CSV output, not %s", p.format)
	}
	return done, nil
}

// maxRecordLine bounds one JSON line read back by --resume.
const maxRecordLine = 16 << 20
