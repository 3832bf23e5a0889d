//go:build !unix

package main

import "os"

// openNonBlocking opens path read-only; without O_NONBLOCK the caller's
// earlier check that it is a regular file is the protection.
func openNonBlocking(path string) (*os.File, error) {
	return os.Open(path)
}
