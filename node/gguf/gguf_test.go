package gguf

import (
	"bytes"
	"encoding/binary"
	"errors"
	"helexa/internal/testshared"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"helexa/node/ggml"
)

// sample builds a file holding every metadata type and a few tensors.
func sample(t testing.TB) (*Writer, []byte) {
	t.Helper()
	w := NewWriter()
	w.Set("general.architecture", NewValue("llama"))
	w.Set("u8", NewValue(uint8(200)))
	w.Set("i8", NewValue(int8(-100)))
	w.Set("u16", NewValue(uint16(60000)))
	w.Set("i16", NewValue(int16(-30000)))
	w.Set("u32", NewValue(uint32(4000000000)))
	w.Set("i32", NewValue(int32(-2000000000)))
	w.Set("f32", NewValue(float32(1.5)))
	w.Set("bool", NewValue(true))
	w.Set("str", NewValue("héllo"))
	w.Set("u64", NewValue(uint64(math.MaxUint64)))
	w.Set("i64", NewValue(int64(math.MinInt64)))
	w.Set("f64", NewValue(math.Pi))
	w.Set("strs", NewArray([]string{"a", "", "ccc"}))
	w.Set("f32s", NewArray([]float32{1, -2, 3.25}))
	w.Set("i32s", NewArray([]int32{1, -2, 3}))
	w.Set("u8s", NewArray([]uint8{1, 2}))
	w.Set("bools", NewArray([]bool{true, false}))
	w.Set("u64s", NewArray([]uint64{7}))
	w.Set("nested", NewNestedArray([]Value{NewArray([]int32{1, 2}), NewArray([]string{"x"})}))
	f32 := make([]byte, 4*8*2)
	for i := range 16 {
		binary.LittleEndian.PutUint32(f32[4*i:], math.Float32bits(float32(i)))
	}
	if err := w.AddTensor("a", ggml.F32, []uint64{8, 2}, f32); err != nil {
		t.Fatal(err)
	}
	q := bytes.Repeat([]byte{7}, 2*34)
	if err := w.AddTensor("b", ggml.Q8_0, []uint64{64}, q); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensorFunc("c", ggml.F16, []uint64{3}, func(out io.Writer) error {
		_, err := out.Write([]byte{1, 2, 3, 4, 5, 6})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return w, buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	w, data := sample(t)
	f, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 || f.Alignment != 32 || f.DataOffset%32 != 0 {
		t.Fatalf("version %d alignment %d data offset %d", f.Version, f.Alignment, f.DataOffset)
	}
	var wantKeys []string
	for _, kv := range w.kvs {
		wantKeys = append(wantKeys, kv.Key)
	}
	if diff := cmp.Diff(wantKeys, f.Keys()); diff != "" {
		t.Fatalf("keys (-want +got):\n%s", diff)
	}
	for _, kv := range w.kvs {
		got, ok := f.Get(kv.Key)
		if !ok {
			t.Fatalf("missing %q", kv.Key)
		}
		if diff := cmp.Diff(kv.Value.Any(), got.Any()); diff != "" || got.Type != kv.Value.Type || got.Elem != kv.Value.Elem {
			t.Errorf("%q: type %s/%s, want %s/%s; diff:\n%s", kv.Key, got.Type, got.Elem, kv.Value.Type, kv.Value.Elem, diff)
		}
	}
	if f.Arch() != "llama" {
		t.Errorf("Arch = %q", f.Arch())
	}
	if u, ok := f.Uint("u8"); !ok || u != 200 {
		t.Errorf("Uint(u8) = %d %v", u, ok)
	}
	if u, ok := f.Uint("u32"); !ok || u != 4000000000 {
		t.Errorf("Uint(u32) = %d %v", u, ok)
	}
	if _, ok := f.Uint("i8"); ok {
		t.Errorf("Uint of a negative value should fail")
	}
	if i, ok := f.Int("i16"); !ok || i != -30000 {
		t.Errorf("Int(i16) = %d %v", i, ok)
	}
	if _, ok := f.Int("u64"); ok {
		t.Errorf("Int of MaxUint64 should fail")
	}
	if x, ok := f.Float("f32"); !ok || x != 1.5 {
		t.Errorf("Float(f32) = %v %v", x, ok)
	}
	if b, ok := f.Bool("bool"); !ok || !b {
		t.Errorf("Bool = %v %v", b, ok)
	}
	if s, ok := f.String("str"); !ok || s != "héllo" {
		t.Errorf("String = %q %v", s, ok)
	}
	if _, ok := f.String("u8"); ok {
		t.Errorf("String of an integer should fail")
	}
	if s, ok := f.Strings("strs"); !ok || !cmp.Equal(s, []string{"a", "", "ccc"}) {
		t.Errorf("Strings = %q", s)
	}
	if x, ok := f.Float32s("f32s"); !ok || !cmp.Equal(x, []float32{1, -2, 3.25}) {
		t.Errorf("Float32s = %v", x)
	}
	if x, ok := f.Int32s("u8s"); !ok || !cmp.Equal(x, []int32{1, 2}) {
		t.Errorf("Int32s(u8s) = %v %v", x, ok)
	}
	if _, ok := f.Int32s("u64s"); !ok {
		t.Errorf("Int32s(u64s) should convert small values")
	}
	if _, ok := f.Get("missing"); ok {
		t.Errorf("Get(missing) found")
	}
	nested, _ := f.Get("nested")
	if nested.Len() != 2 || nested.Index(1).Len() != 1 {
		t.Errorf("nested = %#v", nested)
	}

	if len(f.Tensors) != 3 {
		t.Fatalf("%d tensors", len(f.Tensors))
	}
	wantA := TensorInfo{Name: "a", Dims: []uint64{8, 2}, Type: ggml.F32, Offset: 0}
	if diff := cmp.Diff(wantA, f.Tensors[0]); diff != "" {
		t.Errorf("tensor info (-want +got):\n%s", diff)
	}
	ti, data, ok := f.Tensor("a")
	if !ok || ti.Type != ggml.F32 || !cmp.Equal(ti.Dims, []uint64{8, 2}) || len(data) != 64 || ti.Size() != 64 {
		t.Fatalf("tensor a: %+v, %d bytes", ti, len(data))
	}
	if math.Float32frombits(binary.LittleEndian.Uint32(data[4*5:])) != 5 {
		t.Errorf("tensor a data wrong")
	}
	_, data, _ = f.Tensor("b")
	if !bytes.Equal(data, bytes.Repeat([]byte{7}, 68)) {
		t.Errorf("tensor b data wrong")
	}
	ti, data, _ = f.Tensor("c")
	if !bytes.Equal(data, []byte{1, 2, 3, 4, 5, 6}) || ti.Offset%32 != 0 {
		t.Errorf("tensor c: %+v %v", ti, data)
	}
	if _, _, ok := f.Tensor("zzz"); ok {
		t.Errorf("Tensor(zzz) found")
	}
}

func TestVersion2(t *testing.T) {
	_, data := sample(t)
	d := append([]byte(nil), data...)
	d[4] = 2 // v2 has v3's layout
	f, err := Parse(d)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != 2 || len(f.Tensors) != 3 {
		t.Fatalf("version %d, %d tensors", f.Version, len(f.Tensors))
	}
}

func TestWriterRejectsInconsistentValues(t *testing.T) {
	for name, v := range map[string]Value{
		"scalar type":  {Type: TypeUint32, v: "x"},
		"array type":   {Type: TypeArray, Elem: TypeUint32, v: []string{"x"}},
		"nested elem":  {Type: TypeArray, Elem: TypeString, v: []Value{NewArray([]string{"x"})}},
		"nested inner": NewNestedArray([]Value{NewValue("x")}),
		"zero":         {},
	} {
		w := NewWriter()
		w.Set("k", v)
		if _, err := w.WriteTo(io.Discard); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestOpenFile(t *testing.T) {
	_, data := sample(t)
	p := filepath.Join(t.TempDir(), "x.gguf")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, d, ok := f.Tensor("b"); !ok || len(d) != 68 {
		t.Fatalf("tensor b: %v %d", ok, len(d))
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if s, _ := f.String("str"); s != "héllo" {
		t.Errorf("metadata must survive Close, got %q", s)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing.gguf")); err == nil {
		t.Errorf("missing file: no error")
	}
}

func TestAlignment(t *testing.T) {
	w := NewWriter()
	w.Alignment = 64
	w.Set("general.architecture", NewValue("x"))
	if err := w.AddTensor("a", ggml.F32, []uint64{3}, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("b", ggml.F32, []uint64{3}, make([]byte, 12)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if f.Alignment != 64 || f.DataOffset%64 != 0 || f.Tensors[1].Offset != 64 {
		t.Fatalf("alignment %d, data offset %d, second tensor at %d", f.Alignment, f.DataOffset, f.Tensors[1].Offset)
	}
	w.Alignment = 48
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil {
		t.Errorf("alignment 48 accepted by the writer")
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriter()
	if err := w.AddTensor("a", ggml.Q4_0, []uint64{31}, make([]byte, 18)); err == nil {
		t.Error("row length not a multiple of the block size accepted")
	}
	if err := w.AddTensor("a", ggml.F32, []uint64{2}, make([]byte, 7)); err == nil {
		t.Error("wrong byte count accepted")
	}
	if err := w.AddTensor("b", ggml.Type(99), []uint64{2}, nil); err == nil {
		t.Error("unknown type accepted")
	}
	if err := w.AddTensor("c", ggml.F32, []uint64{1, 1, 1, 1, 1}, make([]byte, 4)); err == nil {
		t.Error("5 dims accepted")
	}
	if err := w.AddTensor("d", ggml.F32, []uint64{1}, make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := w.AddTensor("d", ggml.F32, []uint64{1}, make([]byte, 4)); err == nil {
		t.Error("duplicate accepted")
	}
	if err := w.AddTensorFunc("e", ggml.F32, []uint64{2}, func(out io.Writer) error {
		_, err := out.Write(make([]byte, 4))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteTo(&bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), `"e"`) {
		t.Errorf("short streamed tensor: err = %v", err)
	}
}

// header offsets of the minimal file built by tiny.
func tiny(t *testing.T) []byte {
	t.Helper()
	w := NewWriter()
	w.Set("k", NewValue(uint32(1)))
	if err := w.AddTensor("t", ggml.F32, []uint64{4}, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestCorrupt(t *testing.T) {
	base := tiny(t)
	// Layout: magic 0, version 4, n_tensors 8, n_kv 16, key len 24, "k" 32,
	// type 33, value 37, tensor name len 41, "t" 49, n_dims 50, dim0 54,
	// type 62, offset 66, end of infos 74, data at 96.
	patch := func(off int, b ...byte) []byte {
		d := append([]byte(nil), base...)
		copy(d[off:], b)
		return d
	}
	u32 := func(x uint32) []byte { return binary.LittleEndian.AppendUint32(nil, x) }
	u64 := func(x uint64) []byte { return binary.LittleEndian.AppendUint64(nil, x) }
	if _, err := Parse(base); err != nil {
		t.Fatalf("base file: %v", err)
	}
	f := func(name string, data []byte, want string) {
		t.Helper()
		_, err := Parse(data)
		if err == nil {
			t.Errorf("%s: no error", name)
			return
		}
		if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v does not wrap ErrFormat", name, err)
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %q does not mention %q", name, err, want)
		}
	}
	f("bad magic", patch(0, 'G', 'G', 'U', 'X'), "bad magic")
	f("empty", nil, "bad magic")
	f("version 1", patch(4, u32(1)...), "unsupported version 1")
	f("version 99", patch(4, u32(99)...), "unsupported version 99")
	f("big endian", patch(4, 0, 0, 0, 3), "big-endian")
	f("huge tensor count", patch(8, u64(1<<62)...), "tensor count")
	f("huge kv count", patch(16, u64(1<<62)...), "metadata count")
	f("large kv count", patch(16, u64(1000)...), "cannot fit")
	f("large tensor count", patch(8, u64(1000)...), "cannot fit")
	f("huge key length", patch(24, u64(1<<60)...), "string length")
	f("bad value type", patch(33, u32(77)...), "unknown value type 77")
	f("huge name length", patch(41, u64(1<<60)...), "name of tensor 0")
	f("zero dims", patch(50, u32(0)...), "0 dimensions")
	f("five dims", patch(50, u32(5)...), "5 dimensions")
	f("bad tensor type", patch(62, u32(123)...), "unknown tensor type id 123")
	f("misaligned offset", patch(66, u64(4)...), "not a multiple of the alignment")
	f("tensor past end", patch(66, u64(1<<40)...), `tensor "t"`)
	f("dim past end", patch(54, u64(1000)...), "run past")
	f("dims overflow", patch(54, u64(1<<62)...), "overflows")
	f("block size", patch(62, u32(uint32(ggml.Q4_0))...), "block size")

	// A file with an array whose count is huge, and one with a bad
	// alignment.
	w := NewWriter()
	w.Set("arr", NewArray([]uint32{1, 2, 3}))
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	arr := buf.Bytes()
	// "arr" key at 24 (len) 32..35, type 35, elem type 39, count 43.
	d := append([]byte(nil), arr...)
	copy(d[43:], u64(1<<61))
	f("huge array", d, "exceeds the limit")
	copy(d[43:], u64(1000))
	f("long array", d, "cannot fit")
	d = append([]byte(nil), arr...)
	copy(d[39:], u32(55))
	f("bad element type", d, "unknown array element type 55")

	w = NewWriter()
	w.Set("general.alignment", NewValue(uint32(32)))
	buf.Reset()
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	d = append([]byte(nil), buf.Bytes()...)
	// key len 24, key 32..49, type 49, value 53.
	copy(d[53:], u32(24))
	f("alignment not power of two", d, "power of two")
	copy(d[53:], u32(0))
	f("alignment zero", d, "power of two")

	// A string longer than the limit is refused even where the file is
	// long enough to hold it.
	big := make([]byte, MaxStringBytes+1024)
	copy(big, base[:24])
	copy(big[24:], u64(MaxStringBytes+1))
	f("over-long string", big, "exceeds the limit")

	// Truncation at every offset gives an error, never a panic.
	// (Only the padding after the last tensor may be cut.)
	_, full := sample(t)
	for _, d := range [][]byte{base, full} {
		pf, err := Parse(d)
		if err != nil {
			t.Fatal(err)
		}
		last := pf.Tensors[len(pf.Tensors)-1]
		end := int(pf.DataOffset) + int(last.Offset+last.Size())
		for n := 0; n < end; n++ {
			if _, err := Parse(d[:n]); err == nil {
				t.Errorf("file of %d bytes truncated to %d: no error", len(d), n)
			}
		}
		if _, err := Parse(d[:end]); err != nil {
			t.Errorf("file cut right after its last tensor: %v", err)
		}
	}
}

// sharedDir returns ../shared relative to the module root, or skips.
func sharedDir(t *testing.T) string {
	t.Helper()
	return testshared.Dir(t)
}

func TestSharedFiles(t *testing.T) {
	s := sharedDir(t)
	models, _ := filepath.Glob(filepath.Join(s, "models", "*.gguf"))
	vocabs, _ := filepath.Glob(filepath.Join(s, "tokenizers", "*", "*.gguf"))
	files := append(models, vocabs...)
	if len(files) == 0 {
		t.Skip("no gguf files in shared data")
	}
	for _, p := range files {
		t.Run(filepath.Base(p), func(t *testing.T) {
			f, err := Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if f.Arch() == "" {
				t.Errorf("no general.architecture")
			}
			if toks, ok := f.Strings("tokenizer.ggml.tokens"); !ok || len(toks) == 0 {
				t.Errorf("no tokenizer.ggml.tokens")
			}
			var total uint64
			for _, ti := range f.Tensors {
				d := f.TensorData(ti)
				if uint64(len(d)) != ti.Size() || len(d) == 0 {
					t.Errorf("tensor %s: %d bytes, want %d", ti.Name, len(d), ti.Size())
				}
				total += ti.Size()
			}
			if strings.Contains(p, "models") {
				if len(f.Tensors) == 0 {
					t.Fatalf("model without tensors")
				}
				if _, _, ok := f.Tensor("token_embd.weight"); !ok {
					t.Errorf("no token_embd.weight")
				}
				if n, ok := f.Uint(f.Arch() + ".block_count"); !ok || n == 0 {
					t.Errorf("no block_count")
				}
			}
			t.Logf("v%d, %d keys, %d tensors, %d data bytes", f.Version, len(f.KVs()), len(f.Tensors), total)
		})
	}
}

// TestRewriteShared copies a real file's metadata and tensors through the
// writer and checks that the copy reads back identically.
func TestRewriteShared(t *testing.T) {
	s := sharedDir(t)
	p := filepath.Join(s, "models", "stories260K.gguf")
	src, err := Open(p)
	if err != nil {
		t.Skipf("stories260K.gguf: %v", err)
	}
	defer src.Close()
	w := NewWriter()
	for _, kv := range src.KVs() {
		w.Set(kv.Key, kv.Value)
	}
	for _, ti := range src.Tensors {
		if err := w.AddTensor(ti.Name, ti.Type, ti.Dims, src.TensorData(ti)); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(src.Keys(), got.Keys()); diff != "" {
		t.Fatalf("keys differ:\n%s", diff)
	}
	for _, kv := range src.KVs() {
		v, _ := got.Get(kv.Key)
		if !cmp.Equal(v.Any(), kv.Value.Any()) {
			t.Errorf("key %s differs", kv.Key)
		}
	}
	for _, ti := range src.Tensors {
		gti, d, ok := got.Tensor(ti.Name)
		if !ok || !bytes.Equal(d, src.TensorData(ti)) || !cmp.Equal(gti.Dims, ti.Dims) || gti.Type != ti.Type {
			t.Errorf("tensor %s differs", ti.Name)
		}
	}
}

func TestWriterSetDelete(t *testing.T) {
	w := NewWriter()
	w.Set("a", NewValue(uint32(1)))
	w.Set("b", NewValue("x"))
	w.Set("c", NewValue(true))
	w.Set("a", NewValue(uint32(2))) // replaced in place
	w.Delete("b")
	w.Delete("missing")
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"a", "c"}, f.Keys()); diff != "" {
		t.Fatal(diff)
	}
	if a, _ := f.Uint("a"); a != 2 {
		t.Errorf("a = %d", a)
	}
}

func BenchmarkOpenVocab(b *testing.B) {
	p := testshared.Path(b, "tokenizers/gpt-2/ggml-vocab-gpt-2.gguf")
	for b.Loop() {
		f, err := Open(p)
		if err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}
