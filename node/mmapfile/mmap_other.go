//go:build !unix

package mmapfile

import (
	"io"
	"os"
)

// mapFile reads the file into memory where no mmap is available (the
// service targets Unix hosts; this keeps the tools building elsewhere).
func mapFile(f *os.File, size int) ([]byte, error) {
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, err
	}
	return b, nil
}

func unmap([]byte) error { return nil }
