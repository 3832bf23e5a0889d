//go:build unix

package main

import (
	"os"
	"syscall"
)

// openNonBlocking opens path read-only without waiting: opening a FIFO
// normally blocks until a writer appears. For regular files the flag has no
// effect on reads.
func openNonBlocking(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
}
