package mmapfile

import "fmt"

// Anon is anonymous memory outside the Go heap for large buffers built
// once at load, such as weights repacked for the CPU kernels. On Linux it
// asks for transparent huge pages, which spare a matrix multiplication
// that streams through hundreds of megabytes most of its TLB misses.
type Anon struct{ b []byte }

// NewAnon maps size bytes of zeroed anonymous memory.
func NewAnon(size int) (*Anon, error) {
	if size <= 0 {
		return &Anon{b: []byte{}}, nil
	}
	b, err := mapAnon(size)
	if err != nil {
		return nil, fmt.Errorf("mapping %d bytes of anonymous memory: %w", size, err)
	}
	return &Anon{b: b}, nil
}

// Bytes returns the memory; it stays valid until Close.
func (a *Anon) Bytes() []byte { return a.b }

// Close unmaps the memory. Closing twice is a no-op.
func (a *Anon) Close() error {
	b := a.b
	a.b = nil
	if len(b) == 0 {
		return nil
	}
	return unmapAnon(b)
}

// Release tells the kernel that the whole pages inside b, a part of a file
// mapping, are not needed for now: they leave the process's resident set
// and are read back from the page cache on the next access. The contents
// seen through the mapping do not change.
func Release(b []byte) { release(b) }
