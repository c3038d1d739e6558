package gguf

import (
	"io"
	"testing"
)

func FuzzParse(f *testing.F) {
	_, data := sample(f)
	f.Add(data)
	f.Add(data[:100])
	f.Add([]byte("GGUF\x03\x00\x00\x00"))
	w := NewWriter()
	w.Set("general.alignment", NewValue(uint32(64)))
	w.Set("nested", NewNestedArray([]Value{NewArray([]string{"a"})}))
	w.Set("tokens", NewArray([]string{"<s>", "</s>"}))
	if _, err := w.WriteTo(io.Discard); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		// Everything a valid parse reports must be in bounds.
		for _, ti := range file.Tensors {
			d := file.TensorData(ti)
			if uint64(len(d)) != ti.Size() {
				t.Fatalf("tensor %q: %d bytes, want %d", ti.Name, len(d), ti.Size())
			}
		}
		for _, k := range file.Keys() {
			v, _ := file.Get(k)
			_ = v.Len()
		}
	})
}
