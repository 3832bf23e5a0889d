// Package preprocess turns image files into the normalised tensors the
// network expects. It reproduces the evaluation transform the published
// accuracy was measured with: Pillow's Image.open(p).convert("RGB"),
// torchvision's Resize(232) with Pillow's antialiased bilinear filter,
// CenterCrop(224), ToTensor and Normalize with the ImageNet statistics.
//
// Decoding gives Pillow 9.4's pixels exactly, lossy formats included: JPEG
// goes through this package's own decoder, which computes what
// libjpeg-turbo does (accurate integer IDCT, fancy upsampling, integer
// colour conversion); lossy WebP through golang.org/x/image/webp plus
// libwebp's upsampling and conversion; other formats through the standard
// and x/image decoders plus Pillow's conventions (alpha dropped without
// compositing, palette lookup, 16-bit samples reduced as Pillow reduces
// them, naive CMYK); PNG, PPM/PGM/PBM and TGA through its own row
// decoders. The resize reproduces Pillow 9.4's fixed-point resampler bit
// for bit, and normalisation follows torchvision's float32 arithmetic, so
// tensors equal torchvision's. Transform describes other evaluation
// transforms (timm's 256/224, or any --resize/--crop).
//
// Load and Read never hold the decoded image: decoders hand rows to the
// resize as they produce them (JPEG per MCU row, PNG per row), and what
// must be held (progressive JPEG coefficients, the rasters of the x/image
// decoders) is bounded to 192 MiB, so one image peaks well under 400 MiB
// whatever its declared size. Inputs are read incrementally, the header
// checked as soon as it has arrived.
package preprocess

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/res2net/res2net/pkg/ops"
)

// Options configures decoding and the evaluation transform.
type Options struct {
	// Transform is applied by Load and Read.
	Transform
	// Orient applies the EXIF orientation tag of JPEG, PNG and WebP files
	// as PIL.ImageOps.exif_transpose does. Pillow's Image.open does not,
	// so false matches the published evaluation exactly. TIFF orientation
	// is always applied, because Pillow 9.4's open applies it.
	Orient bool
	// MaxPixels refuses images whose header declares more pixels
	// (width*height) than this, before any pixel memory is allocated.
	// <= 0 means no limit.
	MaxPixels int64
}

// DefaultOptions returns the evaluation transform of the published
// checkpoint (resize to 232, crop 224, ImageNet mean and std) with at most
// 128 million pixels and, on purpose, EXIF orientation applied, so that
// phone photos are classified upright. That differs from Pillow's
// Image.open and torchvision only on files with an orientation tag; the
// CLI's --no-orient (Orient false) gives the published evaluation exactly.
func DefaultOptions() Options {
	return Options{
		Transform: HolocronTransform(),
		Orient:    true,
		MaxPixels: 128_000_000,
	}
}

// ErrUnsupported reports an input that is not an image in a supported
// format (JPEG, PNG, GIF, BMP, TIFF, WebP, PPM/PGM/PBM, TGA) or uses a
// feature of one that is not supported (for example arithmetic-coded
// JPEG, CMYK TIFF, compressed BMP, animated WebP); recognised formats
// that are not read (HEIC, AVIF, JPEG XL, PSD...) are named.
var ErrUnsupported = errors.New("unsupported image")

// ErrTooLarge reports an image whose declared size exceeds
// Options.MaxPixels, one whose decoding would hold more than 192 MiB (for
// example a progressive JPEG over about 67 million pixels at 4:2:0), or
// an input longer than Decode reads (1 GiB).
var ErrTooLarge = errors.New("image too large")

// Load decodes the image file at path and returns its 3 x Crop x Crop
// normalised tensor.
func Load(path string, opts Options) (*ops.Tensor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("load image: %w", err)
	}
	defer f.Close()
	return Read(f, path, opts)
}

// Read is Load for an already open reader (for example standard input);
// name identifies the input in errors.
func Read(r io.Reader, name string, opts Options) (*ops.Tensor, error) {
	if err := opts.Transform.Validate(); err != nil {
		return nil, fmt.Errorf("preprocess %s: %w", name, err)
	}
	in, err := readInput(r, opts)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	sink, err := newTransformSink(opts.Transform, in.w, in.h, in.orientation, decodeBudget)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	if err := in.decode(sink); err != nil {
		return nil, fmt.Errorf("decode %s: %w", name, err)
	}
	return sink.finish(), nil
}

// imageExts are the extensions of the formats Decode reads, lower case.
var imageExts = map[string]bool{
	".jpg": true, ".jpeg": true, ".jpe": true, ".jfif": true,
	".png": true, ".gif": true, ".bmp": true, ".dib": true,
	".tif": true, ".tiff": true, ".webp": true,
	".ppm": true, ".pgm": true, ".pbm": true, ".pnm": true,
	".tga": true, ".icb": true, ".vda": true, ".vst": true,
}

// otherImageExts are image formats Decode recognises by content but does
// not read: its error names them (ErrUnsupported).
var otherImageExts = map[string]bool{
	".heic": true, ".heif": true, ".avif": true, ".jxl": true, ".jp2": true, ".j2k": true,
	".psd": true, ".svg": true, ".ico": true, ".qoi": true, ".exr": true,
	".dng": true, ".cr2": true, ".cr3": true, ".nef": true, ".arw": true,
}

// IsImageFile reports whether name has the extension of a format Decode
// reads (case-insensitive).
func IsImageFile(name string) bool {
	return imageExts[strings.ToLower(filepath.Ext(name))]
}

// IsImageName reports whether name has the extension of an image, read by
// Decode or not (HEIC, AVIF...): the files a folder walk should take, and
// report with Decode's "unsupported" error when it cannot read them,
// instead of skipping them silently.
func IsImageName(name string) bool {
	ext := strings.ToLower(filepath.Ext(name))
	return imageExts[ext] || otherImageExts[ext]
}
