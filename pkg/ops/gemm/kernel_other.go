//go:build !amd64

package gemm

// kernels lists the kernels this CPU can run: only the portable one.
var kernels = []*kernel{generic}

// best is the kernel Fused uses.
var best = generic

// bestBF16 is nil: BF16 products need the amd64 kernels.
var bestBF16 *kernel

// bestMVec is nil: the m-vector layout needs the amd64 kernels.
var bestMVec *kernel

// bestBF16MVec is nil: BF16 products need the amd64 kernels.
var bestBF16MVec *kernel
