//go:build !linux

package mmapfile

func mapAnon(size int) ([]byte, error) { return make([]byte, size), nil }

func unmapAnon([]byte) error { return nil }

func release([]byte) {}
