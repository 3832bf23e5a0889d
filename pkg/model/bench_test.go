package model

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/res2net/res2net/pkg/ops/gemm"
)

// cpuTime returns the CPU time the process has used. Unlike wall time it
// leaves out the time the hypervisor gives to other guests, which on a
// shared machine is most of the noise.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// forwardCase is one shape of run a forward benchmark times.
type forwardCase struct{ batch, threads int }

// benchForward times m in a sub-benchmark per case, named
// name/batch=B/threads=T, on random 224x224 images, and reports wall and
// CPU time per image.
func benchForward(b *testing.B, name string, m *Runner, cases ...forwardCase) {
	for _, tc := range cases {
		b.Run(fmt.Sprintf("%s/batch=%d/threads=%d", name, tc.batch, tc.threads), func(b *testing.B) {
			m.SetThreads(tc.threads)
			x := randomInput(1, tc.batch, 3, 224, 224)
			if _, err := m.Forward(x); err != nil { // size the buffers outside the timing
				b.Fatal(err)
			}
			cpu := cpuTime()
			for b.Loop() {
				if _, err := m.Forward(x); err != nil {
					b.Fatal(err)
				}
			}
			images := float64(b.N * tc.batch)
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1e3/images, "ms/image")
			b.ReportMetric(float64((cpuTime()-cpu).Microseconds())/1e3/images, "cpu-ms/image")
		})
	}
}

// BenchmarkForward times Res2Net-50 (random weights) on 224x224 images,
// in FP32 and, where the CPU has it, BF16.
// Run with: go test -run '^$' -bench Forward ./pkg/model/
func BenchmarkForward(b *testing.B) {
	precs := []gemm.Precision{gemm.FP32}
	if gemm.HasBF16() {
		precs = append(precs, gemm.BF16)
	}
	for _, prec := range precs {
		cfg := Res2Net50()
		cfg.Precision = prec
		m := newRunner(b, cfg, randomStateDict(cfg, 1))
		benchForward(b, prec.String(), m, forwardCase{1, 1}, forwardCase{1, 2}, forwardCase{8, 1}, forwardCase{8, 2})
	}
}

// BenchmarkPresets times every published variant (random weights) on one
// 224x224 image and on a batch of 8 with 2 threads. Run with:
// go test -run '^$' -bench Presets -benchtime 3x ./pkg/model/
func BenchmarkPresets(b *testing.B) {
	for _, name := range PresetNames() {
		cfg, _ := Preset(name)
		m := newRunner(b, cfg, randomStateDict(cfg, 1))
		benchForward(b, name, m, forwardCase{1, 1}, forwardCase{8, 2})
	}
}
