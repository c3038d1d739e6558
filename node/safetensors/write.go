package safetensors

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Write writes tensors (in the given order, packed) and metadata as a
// safetensors file. Each tensor's Data must hold exactly its shape's bytes.
func Write(w io.Writer, tensors []Tensor, metadata map[string]string) error {
	hdr := map[string]any{}
	if len(metadata) > 0 {
		hdr["__metadata__"] = metadata
	}
	var off uint64
	for _, t := range tensors {
		size := DTypeSize(t.DType)
		if size == 0 {
			return fmt.Errorf("safetensors: tensor %q: unknown dtype %q", t.Name, t.DType)
		}
		if _, dup := hdr[t.Name]; dup {
			return fmt.Errorf("safetensors: duplicate tensor %q", t.Name)
		}
		if len(t.Data) != t.Elements()*size {
			return fmt.Errorf("safetensors: tensor %q: %d bytes for %s %v, want %d", t.Name, len(t.Data), t.DType, t.Shape, t.Elements()*size)
		}
		shape := t.Shape
		if shape == nil {
			shape = []int{}
		}
		hdr[t.Name] = map[string]any{"dtype": t.DType, "shape": shape, "data_offsets": [2]uint64{off, off + uint64(len(t.Data))}}
		off += uint64(len(t.Data))
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("safetensors: encoding header: %w", err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	bw := bufio.NewWriter(w)
	n := uint64(len(js))
	bw.Write([]byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24), byte(n >> 32), byte(n >> 40), byte(n >> 48), byte(n >> 56)})
	bw.Write(js)
	for _, t := range tensors {
		bw.Write(t.Data)
	}
	return bw.Flush()
}

// WriteFile writes a safetensors file at path.
func WriteFile(path string, tensors []Tensor, metadata map[string]string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", path, cerr)
		}
	}()
	if err := Write(f, tensors, metadata); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
