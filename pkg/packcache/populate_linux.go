package packcache

import "golang.org/x/sys/unix"

// populate maps every page at once: one pass of the kernel over the page
// cache instead of a fault per few pages when the weights are first read.
const populate = unix.MAP_POPULATE
