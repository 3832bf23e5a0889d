package classify

import (
	"encoding/json"
	"fmt"

	"github.com/res2net/res2net/pkg/preprocess"
)

// Keys of a safetensors checkpoint's __metadata__ that make it
// self-describing, as res2net train-head writes them: Load then names the
// classes and prepares images as the checkpoint says.
const (
	// MetaLabels is a JSON array of the class names, in logit order.
	MetaLabels = "res2net.labels"
	// MetaTransform is a JSON object: the evaluation transform
	// ({"resize": 232, "crop": 224, "mean": [...], "std": [...],
	// "interpolation": "bilinear"}).
	MetaTransform = "res2net.transform"
)

// metaTransform is MetaTransform's JSON form.
type metaTransform struct {
	Resize        int        `json:"resize"`
	Crop          int        `json:"crop"`
	Mean          [3]float32 `json:"mean"`
	Std           [3]float32 `json:"std"`
	Interpolation string     `json:"interpolation"`
}

// Metadata returns the __metadata__ entries that record labels and a
// transform in a checkpoint.
func Metadata(labels []string, t preprocess.Transform) (map[string]string, error) {
	l, err := json.Marshal(labels)
	if err != nil {
		return nil, err
	}
	interp := t.Interpolation
	if interp == "" {
		interp = preprocess.Bilinear
	}
	tr, err := json.Marshal(metaTransform{Resize: t.Resize, Crop: t.Crop, Mean: t.Mean, Std: t.Std, Interpolation: string(interp)})
	if err != nil {
		return nil, err
	}
	return map[string]string{MetaLabels: string(l), MetaTransform: string(tr)}, nil
}

// fromMetadata applies a checkpoint's recorded labels and transform to
// opts: the labels replace default ones (LabelsOptional), not ones the
// caller chose; the transform replaces the sizes and normalisation when
// opts.CheckpointTransform is set. A malformed entry is an error: the
// checkpoint claims to describe itself and does not.
func fromMetadata(meta map[string]string, opts *Options) error {
	if s, ok := meta[MetaLabels]; ok && opts.LabelsOptional {
		var labels []string
		if err := json.Unmarshal([]byte(s), &labels); err != nil {
			return fmt.Errorf("__metadata__ %s: %w", MetaLabels, err)
		}
		opts.Labels, opts.LabelsOptional = labels, false
	}
	if s, ok := meta[MetaTransform]; ok && opts.CheckpointTransform {
		var mt metaTransform
		if err := json.Unmarshal([]byte(s), &mt); err != nil {
			return fmt.Errorf("__metadata__ %s: %w", MetaTransform, err)
		}
		t := preprocess.Transform{Resize: mt.Resize, Crop: mt.Crop, Mean: mt.Mean, Std: mt.Std, Interpolation: preprocess.Interpolation(mt.Interpolation)}
		if err := t.Validate(); err != nil {
			return fmt.Errorf("__metadata__ %s: %w", MetaTransform, err)
		}
		opts.Transform.Transform = t
	}
	return nil
}
