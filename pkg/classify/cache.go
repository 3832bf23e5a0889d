package classify

import (
	"fmt"

	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/packcache"
)

// fromCache is Load's end for a network from opts.Cache, with the
// warnings and metadata the cache recorded from the checkpoint at path,
// and the labels and transform ByArchitecture knows for its configuration.
func fromCache(path string, m *model.Network, info packcache.Info, opts Options) (*Classifier, error) {
	if opts.Warn != nil {
		for _, w := range info.Warnings {
			opts.Warn(fmt.Sprintf("%s: %s", path, w))
		}
	}
	opts.byArchitecture(m.Config())
	if err := fromMetadata(info.Metadata, &opts); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	c, err := newClassifier(m, opts)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}
