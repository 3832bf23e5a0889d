package classify

import (
	"strings"
	"testing"

	"github.com/res2net/res2net/pkg/preprocess"
)

func TestMetadataRoundTrip(t *testing.T) {
	tr := preprocess.TimmTransform(288, 0.95)
	meta, err := Metadata([]string{"cat", "dog"}, tr)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Transform: preprocess.DefaultOptions(), Labels: []string{"x"}, LabelsOptional: true, CheckpointTransform: true}
	if err := fromMetadata(meta, &opts); err != nil {
		t.Fatal(err)
	}
	if strings.Join(opts.Labels, ",") != "cat,dog" || opts.LabelsOptional {
		t.Errorf("labels %v (optional %v), want the recorded cat,dog", opts.Labels, opts.LabelsOptional)
	}
	if opts.Transform.Transform != tr {
		t.Errorf("transform %+v, want %+v", opts.Transform.Transform, tr)
	}
	if !opts.Transform.Orient || opts.Transform.MaxPixels != preprocess.DefaultOptions().MaxPixels {
		t.Error("decoding options changed")
	}

	// The caller's own labels and transform win when it says so.
	opts = Options{Transform: preprocess.DefaultOptions(), Labels: []string{"a", "b"}}
	if err := fromMetadata(meta, &opts); err != nil {
		t.Fatal(err)
	}
	if strings.Join(opts.Labels, ",") != "a,b" || opts.Transform != preprocess.DefaultOptions() {
		t.Errorf("chosen labels or transform replaced: %v %+v", opts.Labels, opts.Transform)
	}
}

func TestMetadataMalformed(t *testing.T) {
	tests := []struct {
		name string
		meta map[string]string
		want string
	}{
		{"labels", map[string]string{MetaLabels: "[1, 2]"}, MetaLabels},
		{"transform json", map[string]string{MetaTransform: "{"}, MetaTransform},
		{"transform invalid", map[string]string{MetaTransform: `{"resize": 232, "crop": 224, "mean": [0,0,0], "std": [0,1,1]}`}, "std"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := Options{LabelsOptional: true, CheckpointTransform: true}
			err := fromMetadata(tt.meta, &opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
