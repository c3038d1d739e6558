package safetensors

import (
	"bytes"
	"testing"
)

func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	if err := Write(&buf, sampleTensors(), map[string]string{"format": "pt"}); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add(header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8))
	f.Add(header(`{"__metadata__":{"k":"v"}}`, 0))
	f.Fuzz(func(t *testing.T, data []byte) {
		tensors, _, err := Parse(data)
		if err != nil {
			return
		}
		for _, ts := range tensors {
			if len(ts.Data) != ts.Elements()*DTypeSize(ts.DType) {
				t.Fatalf("tensor %q: %d bytes for %v", ts.Name, len(ts.Data), ts.Shape)
			}
		}
	})
}
