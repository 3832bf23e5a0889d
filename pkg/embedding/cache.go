package embedding

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
)

// Cache stores embeddings on disk, one file per image, keyed by the
// image's content and the model that computed them, so that a second run
// over the same photos skips the network. Entries are written atomically
// (a temporary file renamed into place), so concurrent runs and
// interrupted ones never leave a partial entry behind.
type Cache struct {
	dir string
}

// cacheSubdir is where caches live under the cache root.
const cacheSubdir = "features"

// OpenCache opens (creating it if needed) the cache for one model under
// root. model identifies the network and its input transform; see
// ModelKey.
func OpenCache(root, model string) (*Cache, error) {
	if model == "" || filepath.Base(model) != model {
		return nil, fmt.Errorf("embedding cache: bad model key %q", model)
	}
	dir := filepath.Join(root, cacheSubdir, model)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("embedding cache: %w", err)
	}
	return &Cache{dir: dir}, nil
}

// ModelKey identifies a model for the cache: a hash of the checkpoint's
// bytes and of a description of everything else that changes the
// features (the input transform).
func ModelKey(checkpoint io.Reader, transform string) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, checkpoint); err != nil {
		return "", fmt.Errorf("embedding cache: hash checkpoint: %w", err)
	}
	io.WriteString(h, "\x00"+transform)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ContentKey is the cache key of an image file's bytes.
func ContentKey(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

func (c *Cache) path(key string) string { return filepath.Join(c.dir, key[:2], key+".f32") }

// Get returns the embedding stored under key, if there is one of dim
// values. A damaged entry counts as missing (and is overwritten by the
// next Put).
func (c *Cache) Get(key string, dim int) ([]float32, bool) {
	if len(key) < 2 {
		return nil, false
	}
	raw, err := os.ReadFile(c.path(key))
	if err != nil || len(raw) != 4*dim {
		return nil, false
	}
	v := make([]float32, dim)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return v, true
}

// Put stores v under key.
func (c *Cache) Put(key string, v []float32) error {
	if len(key) < 2 {
		return fmt.Errorf("embedding cache: bad key %q", key)
	}
	p := c.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("embedding cache: %w", err)
	}
	raw := make([]byte, 4*len(v))
	for i, x := range v {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(x))
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("embedding cache: %w", err)
	}
	_, werr := tmp.Write(raw)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("embedding cache: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("embedding cache: %w", err)
	}
	return nil
}
