//go:build !unix && !windows

package download

import "os"

// tryLock always succeeds: this system has no file locks, so concurrent
// downloads of one file are not serialised here.
func tryLock(*os.File) (bool, error) { return true, nil }

// unlockFile does nothing.
func unlockFile(*os.File) {}
