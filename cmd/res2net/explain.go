package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"image/png"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/disintegration/imaging"
	"github.com/res2net/res2net/pkg/cam"
	"github.com/res2net/res2net/pkg/classify"
	"github.com/res2net/res2net/pkg/ops"
	"github.com/res2net/res2net/pkg/preprocess"
	"github.com/spf13/cobra"
)

type explainOptions struct {
	IO      *ioStreams
	Inputs  []string
	Class   string // class index or label; "" for each image's top-1
	Output  string // PNG file or folder, JSON file; "" for the defaults
	Format  string // png or json
	Opacity float64
	Net     netFlags
}

func newExplainCmd(io *ioStreams) *cobra.Command {
	opts := &explainOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "explain IMAGE...",
		Short: "Show where in each image the evidence for a class lies (class activation maps)",
		Long: `Compute class activation maps (Zhou et al., CVPR 2016): for class c, the map
sum_k W[c,k] * F_k(y, x) over the last stage's feature maps F and the
classifier's weights W, whose mean plus the bias is exactly the logit of c.
The class is each image's top-1 unless --class names one (index or label).

--format png (the default) draws the map over the original photo (not the
crop), upsampled bilinearly and mapped back through the crop and resize, in
the Turbo colour map, with the label and probability in a corner; parts of
the photo the network never saw are dimmed (a photo over 16 megapixels is
drawn downscaled to 16). One PNG per input: -o names the file for a single
input, or a folder for several (default: IMAGE.cam.png in the current
folder). --format json writes one line per input with the raw
grid (7x7 at 224x224) to -o or standard output, and for an input that
failed {"file": ..., "error": ...}.`,
		Example: `  res2net explain photo.jpg                       # writes photo.cam.png
  res2net explain photo.jpg --class "golf ball" -o why.png
  res2net explain photos/ -o maps/
  res2net explain photo.jpg --format json`,
		Args: argsUsage(cobra.MinimumNArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Inputs = args
			return runExplain(cmd.Context(), opts)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&opts.Class, "class", "c", "", "class to explain, by index or label (default: each image's top-1)")
	f.StringVarP(&opts.Output, "output", "o", "", "PNG file (one input) or folder; JSON file (default: standard output)")
	addFormat(cmd, &opts.Format, "png", "json")
	f.Float64Var(&opts.Opacity, "opacity", cam.DefaultOpacity, "opacity of the colour map over the photo, 0 to 1")
	opts.Net.add(cmd, defaultFeatureBatch)
	return cmd
}

// explanation is one input's map: the JSON line of --format json.
type explanation struct {
	File        string      `json:"file"`
	Class       int         `json:"class"`
	Label       string      `json:"label"`
	Probability float32     `json:"probability"`
	CAM         [][]float32 `json:"cam"`
}

// failedRecord is the JSON line of an input that could not be explained,
// as predict writes one.
type failedRecord struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

func (o *explainOptions) validate() error {
	if err := o.Net.validate(); err != nil {
		return err
	}
	if err := checkFormat(o.Format, "png", "json"); err != nil {
		return err
	}
	if !(o.Opacity >= 0 && o.Opacity <= 1) {
		return usageErrorf("--opacity must be between 0 and 1, got %v", o.Opacity)
	}
	return nil
}

func runExplain(ctx context.Context, opts *explainOptions) error {
	if err := opts.validate(); err != nil {
		return err
	}
	inputs := expandInputs(opts.Inputs)
	var pngs *pngNamer
	if opts.Format == "png" {
		var err error
		if pngs, err = newPNGNamer(opts.Output, len(inputs)); err != nil {
			return err
		}
	}
	c, runner, err := opts.Net.load(ctx, opts.IO)
	if err != nil {
		return err
	}
	class := -1
	if opts.Class != "" {
		if class, err = resolveClass(opts.Class, c.Labels()); err != nil {
			return err
		}
	}
	var jsonOut *json.Encoder
	var file *outputFile
	if opts.Format == "json" {
		var w io.Writer = opts.IO.Out
		if opts.Output != "" && opts.Output != "-" {
			if file, err = createOutput(opts.Output); err != nil {
				return err
			}
			defer discard(file)
			w = file
		}
		jsonOut = json.NewEncoder(w)
		jsonOut.SetEscapeHTML(false)
	}
	pre := c.Transform()

	results := map[*job]*explained{}
	wins := map[*job]cam.Window{}
	load := func(it *job) {
		var data []byte
		if data, it.err = readInput(opts.IO, it.name); it.err == nil {
			it.photo, it.x, it.err = decodePhoto(data, it.name, pre)
		}
		if it.err == nil && pngs != nil {
			it.photo, wins[it] = overlayPhoto(it.photo, pre)
		} else {
			it.photo = nil // JSON needs only the tensor
		}
	}
	run := func(good []*job) error { return explainBatch(c, runner, good, class, results) }
	done := func(it *job) {
		if e := results[it]; it.err == nil {
			if jsonOut != nil {
				it.err = jsonOut.Encode(e.record)
			} else {
				it.err = writeOverlay(pngs.name(it.name), it.photo, wins[it], e, opts.Opacity)
			}
		}
		delete(results, it)
		delete(wins, it)
		it.photo = nil
		if it.err != nil {
			fmt.Fprintf(opts.IO.ErrOut, "res2net: %v\n", it.err)
			if jsonOut != nil {
				if err := jsonOut.Encode(failedRecord{File: it.name, Error: it.err.Error()}); err != nil {
					fmt.Fprintf(opts.IO.ErrOut, "res2net: %v\n", err)
				}
			}
		}
	}
	failed, err := opts.Net.forBatches(ctx, opts.IO, inputs, batchRun{load: load, run: run, done: done, what: "explaining"})
	if err != nil {
		return err
	}
	if file != nil {
		if err := file.commit(); err != nil {
			return err
		}
	}
	if failed > 0 {
		return &silentError{fmt.Errorf("%d of the inputs could not be explained", failed)}
	}
	return nil
}

// explained is one image's map with what drawing it needs.
type explained struct {
	record       explanation
	grid         []float32
	gridH, gridW int
}

// explainBatch runs items through the network up to the last stage and
// stores each one's map for class (-1: its top-1) in results.
func explainBatch(cl *classify.Classifier, r *classify.Runner, jobs []*job, class int, results map[*job]*explained) error {
	maps, err := r.FeatureMaps(images(jobs))
	if err != nil {
		return err
	}
	c, h, w := maps.Shape[1], maps.Shape[2], maps.Shape[3]
	head := cl.Network().Head()
	for n, it := range jobs {
		fm := maps.Data[n*c*h*w : (n+1)*c*h*w]
		pooled := make([]float32, c)
		ops.GlobalAvgPool(pooled, fm, c, h*w)
		logits := make([]float32, head.Out)
		head.Forward(logits, pooled)
		probs := ops.Softmax(&ops.Tensor{Shape: []int{1, len(logits)}, Data: logits}).Data
		k := class
		if k < 0 {
			k = ops.TopK(probs, 1)[0]
		}
		grid, err := cam.Grid(fm, c, h, w, head.Weight[k*c:(k+1)*c])
		if err != nil {
			return err
		}
		rows := make([][]float32, h)
		for y := range rows {
			rows[y] = grid[y*w : (y+1)*w]
		}
		results[it] = &explained{
			record: explanation{File: it.name, Class: k, Label: cl.Labels()[k], Probability: probs[k], CAM: rows},
			grid:   grid, gridH: h, gridW: w,
		}
	}
	return nil
}

// maxOverlayPixels bounds the photo kept for the overlay of each image of
// a batch: larger photos are drawn downscaled to this many pixels, so
// that a batch of huge photos does not hold gigabytes until it is drawn.
const maxOverlayPixels = 16 << 20

// overlayPhoto returns the photo to draw the map over, downscaled to at
// most maxOverlayPixels, and the network's view of it (the crop window
// mapped back through the resize) in that picture's pixels.
func overlayPhoto(photo *image.NRGBA, pre preprocess.Options) (*image.NRGBA, cam.Window) {
	b := photo.Bounds()
	g := pre.Transform.Geometry(b.Dx(), b.Dy())
	x0, y0 := g.ToSource(0, 0)
	x1, y1 := g.ToSource(float64(g.CropW), float64(g.CropH))
	win := cam.Window{X: x0, Y: y0, W: x1 - x0, H: y1 - y0}
	if px := b.Dx() * b.Dy(); px > maxOverlayPixels {
		s := math.Sqrt(float64(maxOverlayPixels) / float64(px))
		w, h := max(1, int(float64(b.Dx())*s)), max(1, int(float64(b.Dy())*s))
		sx, sy := float64(w)/float64(b.Dx()), float64(h)/float64(b.Dy())
		photo = imaging.Resize(photo, w, h, imaging.Box)
		win = cam.Window{X: win.X * sx, Y: win.Y * sy, W: win.W * sx, H: win.H * sy}
	}
	return photo, win
}

// writeOverlay draws the map over the photo and writes it as a PNG.
func writeOverlay(path string, photo *image.NRGBA, win cam.Window, e *explained, opacity float64) error {
	b := photo.Bounds()
	heat, err := cam.Upsample(cam.Normalize(e.grid), e.gridH, e.gridW, win, b.Dx(), b.Dy())
	if err != nil {
		return fmt.Errorf("%s: %w", e.record.File, err)
	}
	caption := fmt.Sprintf("%s  %.1f%%", e.record.Label, 100*e.record.Probability)
	img, err := cam.Overlay(photo, heat, opacity, caption)
	if err != nil {
		return fmt.Errorf("%s: %w", e.record.File, err)
	}
	return writePNG(path, img)
}

// writePNG writes img to path through a temporary file, so that a failed
// write leaves no partial picture.
func writePNG(path string, img image.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".res2net-*.png")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	err = png.Encode(tmp, img)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// resolveClass reads --class: a label (exact, then ignoring case) or an
// index.
func resolveClass(s string, labels []string) (int, error) {
	for i, l := range labels {
		if l == s {
			return i, nil
		}
	}
	for i, l := range labels {
		if strings.EqualFold(l, s) {
			return i, nil
		}
	}
	if i, err := strconv.Atoi(s); err == nil {
		if i < 0 || i >= len(labels) {
			return 0, usageErrorf("--class %d is outside [0, %d)", i, len(labels))
		}
		return i, nil
	}
	return 0, usageErrorf("--class %q is neither a class index nor one of the labels: %s", s, strings.Join(labels, ", "))
}

// pngNamer picks each input's PNG path: -o itself for a single input
// (unless it is a folder), else a file named after the input in the -o
// folder (default: the current folder), made unique.
type pngNamer struct {
	file string // the one output file, or ""
	dir  string
	used map[string]bool
}

func newPNGNamer(output string, inputs int) (*pngNamer, error) {
	n := &pngNamer{dir: ".", used: map[string]bool{}}
	if output == "" {
		return n, nil
	}
	fi, err := os.Stat(output)
	isDir := err == nil && fi.IsDir()
	if inputs == 1 && !isDir && !strings.HasSuffix(output, string(filepath.Separator)) {
		n.file = output
		return n, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if err == nil && !isDir {
		return nil, usageErrorf("-o %s: not a folder, and there are %d inputs", output, inputs)
	}
	if err := os.MkdirAll(output, 0o755); err != nil {
		return nil, err
	}
	n.dir = output
	return n, nil
}

func (n *pngNamer) name(input string) string {
	if n.file != "" {
		return n.file
	}
	stem := "stdin"
	if input != stdinName {
		stem = strings.TrimSuffix(filepath.Base(input), filepath.Ext(input))
	}
	p := filepath.Join(n.dir, stem+".cam.png")
	for k := 2; n.used[p]; k++ {
		p = filepath.Join(n.dir, fmt.Sprintf("%s-%d.cam.png", stem, k))
	}
	n.used[p] = true
	return p
}

// discard removes an output file's temporary unless it was committed.
func discard(f *outputFile) {
	if f.tmp.Close() == nil {
		os.Remove(f.tmp.Name())
	}
}
