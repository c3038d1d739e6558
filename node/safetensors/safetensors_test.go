package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"helexa/internal/testshared"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func f32bytes(xs ...float32) []byte {
	b := make([]byte, 4*len(xs))
	for i, x := range xs {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(x))
	}
	return b
}

func sampleTensors() []Tensor {
	return []Tensor{
		{Name: "a.weight", DType: "F32", Shape: []int{2, 3}, Data: f32bytes(1, 2, 3, 4, 5, 6)},
		{Name: "b.bias", DType: "BF16", Shape: []int{4}, Data: []byte{0x80, 0x3f, 0, 0x40, 0, 0, 0x80, 0xbf}},
		{Name: "c", DType: "F16", Shape: []int{}, Data: []byte{0x00, 0x3c}},
	}
}

func encode(t *testing.T, ts []Tensor, meta map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := Write(&buf, ts, meta); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestParseRoundTrip(t *testing.T) {
	data := encode(t, sampleTensors(), map[string]string{"format": "pt"})
	got, meta, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(sampleTensors(), got); diff != "" {
		t.Fatalf("tensors (-want +got):\n%s", diff)
	}
	if meta["format"] != "pt" {
		t.Fatalf("metadata %v", meta)
	}
}

func TestOpenSingleAndSharded(t *testing.T) {
	dir := t.TempDir()
	ts := sampleTensors()
	if err := WriteFile(filepath.Join(dir, "model.safetensors"), ts, nil); err != nil {
		t.Fatal(err)
	}
	m, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a.weight", "b.bias", "c"}, m.Names()); diff != "" {
		t.Fatal(diff)
	}
	a, ok := m.Tensor("a.weight")
	if !ok || a.DType != "F32" || !cmp.Equal(a.Shape, []int{2, 3}) || !bytes.Equal(a.Data, ts[0].Data) {
		t.Fatalf("a.weight = %+v", a)
	}
	if _, ok := m.Tensor("zzz"); ok {
		t.Fatal("missing tensor found")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	sh := t.TempDir()
	if err := WriteFile(filepath.Join(sh, "model-00001-of-00002.safetensors"), ts[:2], map[string]string{"format": "pt"}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(filepath.Join(sh, "model-00002-of-00002.safetensors"), ts[2:], nil); err != nil {
		t.Fatal(err)
	}
	index := `{"metadata": {"total_size": 34}, "weight_map": {
		"a.weight": "model-00001-of-00002.safetensors",
		"b.bias": "model-00001-of-00002.safetensors",
		"c": "model-00002-of-00002.safetensors"}}`
	if err := os.WriteFile(filepath.Join(sh, "model.safetensors.index.json"), []byte(index), 0o644); err != nil {
		t.Fatal(err)
	}
	m, err = Open(sh)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.Names()) != 3 || m.Metadata["format"] != "pt" {
		t.Fatalf("names %v metadata %v", m.Names(), m.Metadata)
	}
	c, _ := m.Tensor("c")
	if !bytes.Equal(c.Data, []byte{0x00, 0x3c}) {
		t.Fatalf("c = %v", c.Data)
	}

	// An index naming a tensor its shard lacks, or a path outside the
	// folder, is refused.
	bad := strings.Replace(index, `"c": "model-00002`, `"d": "model-00002`, 1)
	os.WriteFile(filepath.Join(sh, "model.safetensors.index.json"), []byte(bad), 0o644)
	if _, err := Open(sh); err == nil || !strings.Contains(err.Error(), `"d"`) {
		t.Errorf("index with a missing tensor: %v", err)
	}
	bad = strings.Replace(index, `"model-00002-of-00002.safetensors"`, `"../x.safetensors"`, 1)
	os.WriteFile(filepath.Join(sh, "model.safetensors.index.json"), []byte(bad), 0o644)
	if _, err := Open(sh); err == nil || !errors.Is(err, ErrFormat) {
		t.Errorf("index escaping the folder: %v", err)
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Errorf("empty folder: no error")
	}
}

func header(js string, body int) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(js)))
	b = append(b, js...)
	return append(b, make([]byte, body)...)
}

func TestParseErrors(t *testing.T) {
	f := func(name string, data []byte, want string) {
		t.Helper()
		_, _, err := Parse(data)
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q, want ErrFormat mentioning %q", name, err, want)
		}
	}
	f("short", []byte{1, 2, 3}, "too short")
	f("huge header", binary.LittleEndian.AppendUint64(nil, 1<<40), "limit")
	f("header past end", binary.LittleEndian.AppendUint64(nil, 100), "exceeds")
	f("not json", header(`{"a": `, 0), "header")
	f("not object", header(`[1,2]`, 0), "not a JSON object")
	f("unknown dtype", header(`{"a":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}`, 1), `unknown dtype "Q4"`)
	f("size mismatch", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}`, 4), "takes 8 bytes")
	f("past end", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4), "run past")
	f("backwards", header(`{"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}`, 8), "backwards")
	f("negative dim", header(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}}`, 0), "negative")
	f("overflow", header(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0), "overflows")
	f("missing field", header(`{"a":{"dtype":"F32","shape":[1]}}`, 4), "lacks")
	f("unknown field", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"x":1}}`, 4), "unknown field")
	f("duplicate", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, 4), "duplicate")
	f("overlap", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, 8), "overlaps")
	f("bad metadata", header(`{"__metadata__":{"a":1}}`, 0), "__metadata__")
	f("trailing", header(`{} x`, 0), "trailing")
	f("negative offset", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[-4,0]}}`, 4), "tensor")

	// Truncating a valid file anywhere gives an error, never a panic.
	data := encode(t, sampleTensors(), nil)
	for n := range len(data) {
		if _, _, err := Parse(data[:n]); err == nil {
			t.Errorf("truncated to %d of %d bytes: no error", n, len(data))
		}
	}
}

func sharedModel(t *testing.T) string {
	t.Helper()
	return testshared.Path(t, "models/synth-hf-llama3")
}

func TestSharedModel(t *testing.T) {
	m, err := Open(sharedModel(t))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	emb, ok := m.Tensor("model.embed_tokens.weight")
	if !ok || emb.DType != "BF16" || !cmp.Equal(emb.Shape, []int{128256, 128}) || len(emb.Data) != 128256*128*2 {
		t.Fatalf("embed_tokens: %s %v %d bytes", emb.DType, emb.Shape, len(emb.Data))
	}
	for l := range 4 {
		for _, n := range []string{"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm"} {
			name := "model.layers." + string(rune('0'+l)) + "." + n + ".weight"
			if _, ok := m.Tensor(name); !ok {
				t.Errorf("missing %s", name)
			}
		}
	}
	k, _ := m.Tensor("model.layers.0.self_attn.k_proj.weight")
	if !cmp.Equal(k.Shape, []int{64, 128}) {
		t.Errorf("k_proj shape %v", k.Shape)
	}
	t.Logf("%d tensors", len(m.Names()))
}
