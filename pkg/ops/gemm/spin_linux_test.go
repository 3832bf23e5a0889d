package gemm

import "testing"

func TestParseRunnable(t *testing.T) {
	tests := []struct {
		in   string
		want int
		ok   bool
	}{
		{"0.52 0.58 0.59 3/467 12345\n", 3, true},
		{"12.45 12.47 13.26 14/372 999", 14, true},
		{"0.52 0.58 0.59", 0, false},
		{"0.52 0.58 0.59 x/467 1", 0, false},
		{"0.52 0.58 0.59 3467 1", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		n, ok := parseRunnable([]byte(tc.in))
		if n != tc.want || ok != tc.ok {
			t.Errorf("parseRunnable(%q) = %d, %v, want %d, %v", tc.in, n, ok, tc.want, tc.ok)
		}
	}
	if n, ok := runnableThreads(); !ok || n < 1 {
		t.Errorf("runnableThreads() = %d, %v on this Linux machine, want at least 1 (this test)", n, ok)
	}
}
