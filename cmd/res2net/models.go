package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"text/tabwriter"

	"github.com/res2net/res2net/pkg/download"
	"github.com/res2net/res2net/pkg/model"
	"github.com/res2net/res2net/pkg/registry"
	"github.com/spf13/cobra"
)

type modelsOptions struct {
	IO     *ioStreams
	Format string
	// Cache is the cache directory, "" for registry.CacheDir.
	Cache string
}

func newModelsCmd(io *ioStreams) *cobra.Command {
	opts := &modelsOptions{IO: io}
	cmd := &cobra.Command{
		Use:   "models",
		Short: "List the published models: classes, parameters, accuracy, source, cached or not",
		Long: `List every model --model accepts: its name, classes, learnable parameters
(from its configuration), published top-1 accuracy, where its weights come
from, and whether a verified copy is in the cache. "unchecked" is a cached
file not verified yet (it is, on its first use); "mismatch" one that failed
its check and will be downloaded again.

The first is the default. A timm model is also found by its timm name
without ".in1k" (res2net50d) when no other model has that name, and as
timm/NAME; res2net50_26w_4s alone is Holocron's.`,
		Args: argsUsage(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runModels(opts)
		},
	}
	addFormat(cmd, &opts.Format, modelsFormats...)
	return cmd
}

var modelsFormats = []string{"text", "json"}

// modelInfo is one row of `res2net models`.
type modelInfo struct {
	Name       string   `json:"name"`
	Aliases    []string `json:"aliases"`
	Default    bool     `json:"default"`
	Arch       string   `json:"arch"`
	Classes    int      `json:"classes"`
	Dataset    string   `json:"dataset"`
	Params     int64    `json:"params"`
	Top1       float64  `json:"top1"`
	Top5       float64  `json:"top5"`
	Source     string   `json:"source"`
	URL        string   `json:"url"`
	Verify     string   `json:"verify"`
	Cached     string   `json:"cached"` // yes, no, unchecked, mismatch
	CachedPath string   `json:"path,omitempty"`
}

func runModels(opts *modelsOptions) error {
	if err := checkFormat(opts.Format, modelsFormats...); err != nil {
		return err
	}
	dir := opts.Cache
	if dir == "" {
		var err error
		if dir, err = registry.CacheDir(); err != nil {
			return err
		}
	}
	var infos []modelInfo
	for _, e := range registry.All() {
		info := modelInfo{Name: e.Name, Aliases: e.Aliases, Default: e.Name == registry.Default.Name, Arch: e.Arch,
			Classes: len(e.Classes), Dataset: e.Dataset, Params: configParams(e.Config), Top1: e.Top1, Top5: e.Top5,
			Source: e.Origin, URL: e.URL, Verify: e.Verify.String()}
		p := filepath.Join(dir, e.File)
		info.Cached = cacheState(p, e.Source())
		if info.Cached != "no" {
			info.CachedPath = p
		}
		infos = append(infos, info)
	}
	if opts.Format == "json" {
		enc := json.NewEncoder(opts.IO.Out)
		enc.SetIndent("", "  ")
		return enc.Encode(infos)
	}
	w := tabwriter.NewWriter(opts.IO.Out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "NAME\tCLASSES\t    PARAMS\t  TOP-1\tDATASET\tSOURCE\tCACHED")
	for _, m := range infos {
		name := m.Name
		if m.Default {
			name += " (default)"
		}
		// Numbers padded to their column's width, so they align right.
		fmt.Fprintf(w, "%s\t%7d\t%10s\t%6.2f%%\t%s\t%s\t%s\n", name, m.Classes, group(m.Params), m.Top1, m.Dataset, m.Source, m.Cached)
	}
	if err := w.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(opts.IO.Out, "\nCache: %s\n", dir)
	return err
}

// cacheState says whether a verified copy of src is at p, without hashing
// it: the stamp decides, and a file with none is "unchecked".
func cacheState(p string, src download.Source) string {
	switch err := download.VerifyStamp(p, src); {
	case err == nil:
		return "yes"
	case errors.Is(err, fs.ErrNotExist):
		return "no"
	case errors.Is(err, download.ErrUnverified):
		return "unchecked"
	}
	return "mismatch"
}

// configParams counts the learnable parameters of a network of cfg.
func configParams(cfg model.Config) int64 {
	var n int64
	for _, l := range cfg.Summary(inspectSize, inspectSize) {
		n += l.Params
	}
	return n
}
