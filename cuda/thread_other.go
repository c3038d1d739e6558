//go:build !linux

package cuda

// threadID identifies the calling OS thread; off Linux (where the driver
// is never found) it identifies none, so work always goes through the
// worker.
func threadID() int { return -1 }
