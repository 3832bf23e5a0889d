package gemm

import "fmt"

// Values returns p's packed values (bfloat16 pairs for BF16), in the
// layout PackWith makes on this CPU in this build: what a cache of
// packed weights stores, to hand back to PackedFromValues. The caller must
// not modify them.
func (p *PackedA) Values() []float32 { return p.data }

// PackedFromValues returns the PackedA that PackWith(opts, m, k, ...)
// makes on this CPU, with values (as Values returned them) as its packed
// data. values is used in place, never written, so it may be read-only
// memory, and must not change while the result is in use. It fails when
// len(values) is not the size of that layout; it cannot tell values packed
// by another build or CPU, or with other options, of the same size, so a
// cache must record which layout it holds.
func PackedFromValues(opts PackOptions, m, k int, values []float32) (*PackedA, error) {
	if m < 0 || k < 0 {
		return nil, fmt.Errorf("gemm: packed matrix of %d x %d", m, k)
	}
	p := layoutA(opts.kernel(), m, k)
	if len(values) != p.size() {
		return nil, fmt.Errorf("gemm: %d packed values for a %d x %d %v matrix, whose layout has %d", len(values), m, k, p.Precision(), p.size())
	}
	p.data = values
	return p, nil
}
