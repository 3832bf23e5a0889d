package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/res2net/res2net/pkg/classify"
)

// checkMemory refuses a forward pass that cannot fit in the memory
// available, before allocating any of it: the Go runtime cannot recover
// from running out, and the kernel would kill the process instead.
func checkMemory(c *classify.Classifier, batch, h, w, threads int) error {
	need := c.RunBytes(batch, h, w, threads)
	avail, ok := availableMemory()
	if !ok || need <= float64(avail) {
		return nil
	}
	return fmt.Errorf("a batch of %d images of %dx%d needs about %s, more than the %s of memory available: use a smaller --batch-size",
		batch, w, h, humanBytes(need), humanBytes(float64(avail)))
}

// availableMemory is what the process may still allocate: the kernel's
// MemAvailable, or less when a cgroup (a container) limits it. ok is false
// where neither can be read.
func availableMemory() (avail int64, ok bool) {
	if kb, found := meminfo("MemAvailable"); found {
		avail, ok = kb<<10, true
	}
	if limit, err := readInt("/sys/fs/cgroup/memory.max"); err == nil {
		if used, err := readInt("/sys/fs/cgroup/memory.current"); err == nil && (!ok || limit-used < avail) {
			avail, ok = max(limit-used, 0), true
		}
	}
	return avail, ok
}

func meminfo(key string) (kb int64, ok bool) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, rest, found := strings.Cut(sc.Text(), ":")
		if found && name == key {
			v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// readInt reads a file holding one integer ("max", a cgroup's "no limit",
// is an error).
func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
}

// humanBytes formats n bytes with a binary unit: "61.6 GiB".
func humanBytes(n float64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"}
	i := 0
	for n >= 1024 && i < len(units)-1 {
		n /= 1024
		i++
	}
	return fmt.Sprintf("%.1f %s", n, units[i])
}
