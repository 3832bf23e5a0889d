package checkpoint

import (
	"fmt"
	"math"
)

// numel validates t's view of its storage (sizes, strides and offset non
// negative, every addressed element inside the storage, no overflow) and
// returns the number of elements of t.
func (t *tensorRef) numel() (int64, error) {
	if len(t.size) != len(t.stride) {
		return 0, fmt.Errorf("%d sizes but %d strides", len(t.size), len(t.stride))
	}
	if t.offset < 0 {
		return 0, fmt.Errorf("negative storage offset %d", t.offset)
	}
	n := int64(1)
	for i, s := range t.size {
		if s < 0 || t.stride[i] < 0 {
			return 0, fmt.Errorf("negative size or stride in size %v stride %v", t.size, t.stride)
		}
		if s != 0 && n > math.MaxInt64/s {
			return 0, fmt.Errorf("size %v overflows", t.size)
		}
		n *= s
	}
	if n == 0 {
		if t.offset > t.storage.numel {
			return 0, fmt.Errorf("storage offset %d past the end of a storage of %d elements", t.offset, t.storage.numel)
		}
		return 0, nil
	}
	last := t.offset // index of the last element addressed
	for i, s := range t.size {
		st := t.stride[i]
		if s > 1 && st > (math.MaxInt64-last)/(s-1) {
			return 0, fmt.Errorf("view (offset %d, size %v, stride %v) overflows", t.offset, t.size, t.stride)
		}
		last += (s - 1) * st
	}
	if last >= t.storage.numel {
		return 0, fmt.Errorf("view (offset %d, size %v, stride %v) reaches element %d of a storage of %d",
			t.offset, t.size, t.stride, last, t.storage.numel)
	}
	return n, nil
}

// contiguous reports whether t's elements are laid out in row-major order
// without gaps. Dimensions of size 1 may have any stride.
func (t *tensorRef) contiguous() bool {
	want := int64(1)
	for i := len(t.size) - 1; i >= 0; i-- {
		if t.size[i] == 0 {
			return true
		}
		if t.size[i] != 1 && t.stride[i] != want {
			return false
		}
		want *= t.size[i]
	}
	return true
}

// materialize returns t's elements as a new contiguous float32 slice, or
// the storage's own buffer when t covers all of it in order and no other
// tensor took it: each tensor gets memory of its own, since users may
// modify the weights in place. Copies are charged to budget, which keeps
// views that repeat elements (stride 0, shared storages) from turning a
// small file into a large allocation.
func (t *tensorRef) materialize(budget *int64) ([]float32, error) {
	n, err := t.numel()
	if err != nil {
		return nil, err
	}
	st := t.storage
	if t.contiguous() && t.offset == 0 && n == st.numel && !st.claimed {
		st.claimed = true
		return st.data, nil
	}
	if n > *budget {
		return nil, fmt.Errorf("view of %d elements exceeds what the file can hold", n)
	}
	*budget -= n
	out := make([]float32, n)
	if t.contiguous() {
		copy(out, st.data[t.offset:t.offset+n])
		return out, nil
	}
	gather(out, st.data, t.offset, t.size, t.stride)
	return out, nil
}

// gather copies the strided view (offset, size, stride) of src into dst in
// row-major order. The view has been validated and has at least one
// dimension and one element.
func gather(dst, src []float32, offset int64, size, stride []int64) {
	nd := len(size)
	// Size-1 dimensions never move; zeroing their stride keeps the
	// position arithmetic below within the validated range.
	stride = append([]int64(nil), stride...)
	for i, s := range size {
		if s == 1 {
			stride[i] = 0
		}
	}
	idx := make([]int64, nd)
	inner, innerStride := size[nd-1], stride[nd-1]
	pos := offset
	for o := int64(0); o < int64(len(dst)); o += inner {
		p := pos
		for j := range inner {
			dst[o+j] = src[p]
			p += innerStride
		}
		for d := nd - 2; d >= 0; d-- {
			idx[d]++
			pos += stride[d]
			if idx[d] < size[d] {
				break
			}
			pos -= stride[d] * size[d]
			idx[d] = 0
		}
	}
}
