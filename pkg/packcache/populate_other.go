//go:build unix && !linux

package packcache

// populate: only Linux maps the pages ahead.
const populate = 0
