package model

import "testing"

// TestConvColumns checks the layout hint every conv gets: its output
// positions per image at referenceCrop, 7x7 in the last stage.
func TestConvColumns(t *testing.T) {
	cfg := Res2Net50()
	a := cfg.arch()
	a.setColumns(cfg.Summary(referenceCrop, referenceCrop))
	if got := a.stem[0].columns; got != 112*112 {
		t.Errorf("stem conv: columns %d, want %d", got, 112*112)
	}
	first, last := a.stages[3][0], a.stages[3][len(a.stages[3])-1]
	for _, c := range []struct {
		name string
		s    convSpec
		want int
	}{
		{"stage 4 first reduce", first.reduce, 14 * 14}, // before the stride
		{"stage 4 first branch", first.branches[0], 7 * 7},
		{"stage 4 first expand", first.expand, 7 * 7},
		{"stage 4 downsample", *first.downsample, 7 * 7},
		{"stage 4 last reduce", last.reduce, 7 * 7},
		{"stage 3 last branch", a.stages[2][len(a.stages[2])-1].branches[0], 14 * 14},
	} {
		if c.s.columns != c.want {
			t.Errorf("%s (%s): columns %d, want %d", c.name, c.s.conv, c.s.columns, c.want)
		}
	}
}
