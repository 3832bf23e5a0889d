package download

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"
)

// lockPoll is how often lockPath tries again for a lock another holds.
const lockPoll = 100 * time.Millisecond

// lockIn creates the cache directory dir and takes the lock of the file
// final in it, as lockPath, with the lock file beside final.
func lockIn(ctx context.Context, dir, final string, progress io.Writer) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("cache directory: %w", err)
	}
	return lockPath(ctx, final+".lock", progress)
}

// lockPath takes an exclusive lock on the file at path, creating it, and
// waits for it while ctx allows. unlock removes the file, so no lock is
// left behind; since a waiter may have opened the file before it was
// removed, a lock counts only when path still names the locked file.
func lockPath(ctx context.Context, path string, progress io.Writer) (unlock func(), err error) {
	for waited := false; ; {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, fmt.Errorf("cannot write to the cache directory: %w", err)
		}
		for {
			ok, err := tryLock(f)
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("lock %s: %w", path, err)
			}
			if ok {
				break
			}
			if !waited && progress != nil {
				fmt.Fprintf(progress, "waiting for another download (lock %s)\n", path)
			}
			waited = true
			select {
			case <-ctx.Done():
				f.Close()
				return nil, ctx.Err()
			case <-time.After(lockPoll):
			}
		}
		held, err1 := f.Stat()
		named, err2 := os.Stat(path)
		if err1 == nil && err2 == nil && os.SameFile(held, named) {
			return func() {
				// Removed while locked where the system allows it (Unix),
				// else once closed (Windows refuses to remove an open file).
				rmErr := os.Remove(path)
				unlockFile(f)
				f.Close()
				if rmErr != nil {
					os.Remove(path)
				}
			}, nil
		}
		// The holder removed the file after we opened it: start again.
		unlockFile(f)
		f.Close()
	}
}
