// Package mmapfile maps files read-only into memory, so that model weights
// are read straight from the page cache and never copied onto the Go heap.
package mmapfile

import (
	"fmt"
	"math"
	"os"
)

// File is a read-only memory mapping of a whole file. Bytes stay valid
// until Close; after Close, touching them faults. A File is safe for
// concurrent reads; Close must not race with readers.
type File struct {
	path string
	data []byte
	size int64
}

// Open maps the file at path read-only. An empty file maps to an empty,
// non-nil-error File whose Bytes is empty.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", path, err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("mapping %s: not a regular file", path)
	}
	size := st.Size()
	if size == 0 {
		return &File{path: path, data: []byte{}}, nil
	}
	if size < 0 || uint64(size) > math.MaxInt {
		return nil, fmt.Errorf("mapping %s: size %d too large", path, size)
	}
	data, err := mapFile(f, int(size))
	if err != nil {
		return nil, fmt.Errorf("mapping %s (%d bytes): %w", path, size, err)
	}
	return &File{path: path, data: data, size: size}, nil
}

// Bytes returns the mapped contents. The slice must not be written to
// (the mapping is read-only: a write faults) nor used after Close.
func (f *File) Bytes() []byte { return f.data }

// Len returns the file size in bytes.
func (f *File) Len() int64 { return f.size }

// Path returns the path the file was opened with.
func (f *File) Path() string { return f.path }

// Close unmaps the file. Closing twice is a no-op.
func (f *File) Close() error {
	if f == nil || f.data == nil {
		return nil
	}
	data := f.data
	f.data = nil
	if len(data) == 0 {
		return nil
	}
	if err := unmap(data); err != nil {
		return fmt.Errorf("unmapping %s: %w", f.path, err)
	}
	return nil
}
