package model

import (
	"fmt"
	"testing"
)

// BenchmarkForward times Res2Net-50 (random weights) on 224x224 images.
// Run with: go test -run '^$' -bench Forward ./pkg/model/
func BenchmarkForward(b *testing.B) {
	cfg := Res2Net50()
	m, err := New(cfg, randomStateDict(cfg, 1))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ batch, threads int }{{1, 1}, {1, 2}, {2, 2}} {
		b.Run(fmt.Sprintf("batch=%d/threads=%d", tc.batch, tc.threads), func(b *testing.B) {
			m.SetThreads(tc.threads)
			x := randomInput(1, tc.batch, 3, 224, 224)
			if _, err := m.Forward(x); err != nil { // size the buffers outside the timing
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := m.Forward(x); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N*tc.batch), "ms/image")
		})
	}
}
