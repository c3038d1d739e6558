// Package gguf reads and writes GGUF model files (versions 2 and 3).
//
// A File parsed from a mapping keeps the mapping: tensor data are slices of
// it, never copies. Metadata values are decoded onto the heap, so they stay
// valid after Close. The reader trusts nothing it reads: every count and
// length is bounded by the bytes that remain, every tensor extent is
// checked against the file size, and a bad file gets an error (wrapping
// ErrFormat) that names the offset, the key or tensor, and what was
// expected.
package gguf

import (
	"errors"
	"fmt"
	"math"
	"math/bits"

	"helexa/node/ggml"
	"helexa/node/mmapfile"
)

// Magic is the first four bytes of every GGUF file.
const Magic = "GGUF"

// DefaultAlignment is the tensor data alignment when the file sets no
// general.alignment.
const DefaultAlignment = 32

// MaxDims is the most dimensions a tensor may have (ggml's limit).
const MaxDims = 4

// Sanity limits, far above anything a real model holds, so that a hostile
// header inside a large file cannot make the reader allocate or copy
// gigabytes: counts and lengths are also bounded by the bytes that remain.
const (
	MaxTensors     = 1 << 20
	MaxKVs         = 1 << 20
	MaxArrayLen    = 1 << 24 // elements of one metadata array
	MaxStringBytes = 1 << 26 // bytes of one string
)

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("malformed gguf")

// TensorInfo describes one tensor. Offset is relative to File.DataOffset.
type TensorInfo struct {
	Name string
	// Dims are ggml's ne: Dims[0] is the contiguous row length.
	Dims   []uint64
	Type   ggml.Type
	Offset uint64
}

// Elements returns the number of elements (product of Dims).
func (ti TensorInfo) Elements() uint64 {
	n := uint64(1)
	for _, d := range ti.Dims {
		n *= d
	}
	return n
}

// Size returns the tensor's byte size (0 for an unknown type).
func (ti TensorInfo) Size() uint64 {
	n := ti.Elements()
	bs := uint64(ti.Type.BlockSize())
	if bs == 0 {
		return 0
	}
	return n / bs * uint64(ti.Type.BlockBytes())
}

// File is a parsed GGUF file. Fields are read-only after Parse/Open.
// A File is safe for concurrent reads.
type File struct {
	Version   uint32
	Alignment int
	Tensors   []TensorInfo
	// DataOffset is the absolute file offset of the tensor data section.
	DataOffset int64

	kvs     []KV
	index   map[string]int
	tensors map[string]int
	data    []byte
	mm      *mmapfile.File
}

// Open maps the file at path and parses it.
func Open(path string) (*File, error) {
	mm, err := mmapfile.Open(path)
	if err != nil {
		return nil, err
	}
	f, err := Parse(mm.Bytes())
	if err != nil {
		mm.Close()
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	f.mm = mm
	return f, nil
}

// Close releases the mapping of a File from Open; tensor data slices are
// invalid afterwards. It is a no-op for a File from Parse.
func (f *File) Close() error {
	f.data = nil
	if f.mm == nil {
		return nil
	}
	mm := f.mm
	f.mm = nil
	return mm.Close()
}

// KVs returns the metadata in file order. The slice must not be modified.
func (f *File) KVs() []KV { return f.kvs }

// Keys returns the metadata keys in file order.
func (f *File) Keys() []string {
	keys := make([]string, len(f.kvs))
	for i, kv := range f.kvs {
		keys[i] = kv.Key
	}
	return keys
}

// Get returns the value of key.
func (f *File) Get(key string) (Value, bool) {
	i, ok := f.index[key]
	if !ok {
		return Value{}, false
	}
	return f.kvs[i].Value, true
}

// String returns a string value.
func (f *File) String(key string) (string, bool) {
	v, ok := f.Get(key)
	if !ok {
		return "", false
	}
	return v.String()
}

// Uint returns an integer value of any width as uint64 (false if negative).
func (f *File) Uint(key string) (uint64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	return v.Uint()
}

// Int returns an integer value of any width as int64.
func (f *File) Int(key string) (int64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	return v.Int()
}

// Float returns a float (or integer) value as float64.
func (f *File) Float(key string) (float64, bool) {
	v, ok := f.Get(key)
	if !ok {
		return 0, false
	}
	return v.Float()
}

// Bool returns a bool value.
func (f *File) Bool(key string) (bool, bool) {
	v, ok := f.Get(key)
	if !ok {
		return false, false
	}
	return v.Bool()
}

// Strings returns an array of strings.
func (f *File) Strings(key string) ([]string, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	return v.Strings()
}

// Float32s returns an array of floats as float32.
func (f *File) Float32s(key string) ([]float32, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	return v.Float32s()
}

// Int32s returns an array of integers as int32.
func (f *File) Int32s(key string) ([]int32, bool) {
	v, ok := f.Get(key)
	if !ok {
		return nil, false
	}
	return v.Int32s()
}

// Arch returns general.architecture ("" when absent).
func (f *File) Arch() string {
	s, _ := f.String("general.architecture")
	return s
}

// TensorInfo returns the info of the named tensor.
func (f *File) TensorInfo(name string) (TensorInfo, bool) {
	i, ok := f.tensors[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.Tensors[i], true
}

// TensorData returns ti's bytes, a slice of the file's data (nil after
// Close or for a tensor not from this file's extent).
func (f *File) TensorData(ti TensorInfo) []byte {
	start := uint64(f.DataOffset) + ti.Offset
	end := start + ti.Size()
	if start < ti.Offset || end < start || end > uint64(len(f.data)) {
		return nil
	}
	return f.data[start:end:end]
}

// Tensor returns the named tensor's info and bytes.
func (f *File) Tensor(name string) (TensorInfo, []byte, bool) {
	ti, ok := f.TensorInfo(name)
	if !ok {
		return TensorInfo{}, nil, false
	}
	return ti, f.TensorData(ti), true
}

// Parse parses a GGUF file held in data. Tensor data returned later are
// slices of data.
func Parse(data []byte) (*File, error) {
	r := &reader{b: data}
	f := &File{data: data, index: map[string]int{}, tensors: map[string]int{}}

	if len(data) < 4 || string(data[:4]) != Magic {
		n := min(len(data), 4)
		return nil, fmt.Errorf("%w: offset 0: bad magic %q, want %q", ErrFormat, data[:n], Magic)
	}
	r.pos = 4
	v, err := r.u32("version")
	if err != nil {
		return nil, err
	}
	if v != 2 && v != 3 {
		if bits.ReverseBytes32(v) == 2 || bits.ReverseBytes32(v) == 3 {
			return nil, fmt.Errorf("%w: offset 4: big-endian file (version %d byte-swapped) not supported", ErrFormat, bits.ReverseBytes32(v))
		}
		return nil, fmt.Errorf("%w: offset 4: unsupported version %d, want 2 or 3", ErrFormat, v)
	}
	f.Version = v
	nt, err := r.u64("tensor count")
	if err != nil {
		return nil, err
	}
	nkv, err := r.u64("metadata count")
	if err != nil {
		return nil, err
	}
	// Each entry takes at least 8+4+1 bytes (key length, type, value); each
	// tensor info at least 8+4+4+8.
	if nkv > MaxKVs {
		return nil, fmt.Errorf("%w: offset 16: metadata count %d exceeds the limit of %d", ErrFormat, nkv, MaxKVs)
	}
	if nt > MaxTensors {
		return nil, fmt.Errorf("%w: offset 8: tensor count %d exceeds the limit of %d", ErrFormat, nt, MaxTensors)
	}
	if nkv > uint64(r.left())/13 {
		return nil, fmt.Errorf("%w: offset 16: metadata count %d cannot fit in the %d bytes left", ErrFormat, nkv, r.left())
	}
	if nt > uint64(r.left())/24 {
		return nil, fmt.Errorf("%w: offset 8: tensor count %d cannot fit in the %d bytes left", ErrFormat, nt, r.left())
	}

	f.kvs = make([]KV, 0, min(nkv, 1024))
	for i := uint64(0); i < nkv; i++ {
		at := r.pos
		key, err := r.str(fmt.Sprintf("key of metadata entry %d", i))
		if err != nil {
			return nil, err
		}
		if _, dup := f.index[key]; dup {
			return nil, fmt.Errorf("%w: offset %d: duplicate metadata key %q", ErrFormat, at, key)
		}
		t, err := r.u32(fmt.Sprintf("type of key %q", key))
		if err != nil {
			return nil, err
		}
		val, err := r.value(ValueType(t), key, 0)
		if err != nil {
			return nil, err
		}
		f.index[key] = len(f.kvs)
		f.kvs = append(f.kvs, KV{Key: key, Value: val})
	}

	f.Alignment = DefaultAlignment
	if av, ok := f.Get("general.alignment"); ok {
		a, ok := av.Uint()
		if !ok || (av.Type != TypeUint32 && av.Type != TypeUint64 && av.Type != TypeUint16 && av.Type != TypeUint8) {
			return nil, fmt.Errorf("%w: general.alignment has type %s, want uint32", ErrFormat, av.Type)
		}
		if a == 0 || a&(a-1) != 0 || a > 1<<30 {
			return nil, fmt.Errorf("%w: general.alignment %d is not a power of two (up to 2^30)", ErrFormat, a)
		}
		f.Alignment = int(a)
	}

	f.Tensors = make([]TensorInfo, 0, min(nt, 4096))
	for i := uint64(0); i < nt; i++ {
		ti, err := r.tensorInfo(i)
		if err != nil {
			return nil, err
		}
		if ti.Offset%uint64(f.Alignment) != 0 {
			return nil, fmt.Errorf("%w: tensor %q: offset %d is not a multiple of the alignment %d", ErrFormat, ti.Name, ti.Offset, f.Alignment)
		}
		if _, dup := f.tensors[ti.Name]; dup {
			return nil, fmt.Errorf("%w: duplicate tensor name %q", ErrFormat, ti.Name)
		}
		f.tensors[ti.Name] = len(f.Tensors)
		f.Tensors = append(f.Tensors, ti)
	}

	// The data section starts at the next multiple of the alignment.
	off := uint64(r.pos)
	a := uint64(f.Alignment)
	off = (off + a - 1) / a * a
	f.DataOffset = int64(off)
	size := uint64(len(data))
	for _, ti := range f.Tensors {
		if off > size {
			return nil, fmt.Errorf("%w: tensor %q: data section starts at %d, past the end of the %d-byte file", ErrFormat, ti.Name, off, size)
		}
		avail := size - off
		size := ti.Size()
		if ti.Offset > avail || size > avail-ti.Offset {
			return nil, fmt.Errorf("%w: tensor %q (%s %v): bytes [%d, %d) of the data section run past its end (%d bytes; file truncated?)",
				ErrFormat, ti.Name, ti.Type, ti.Dims, ti.Offset, satAdd(ti.Offset, size), avail)
		}
	}
	return f, nil
}

func satAdd(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	if c != 0 {
		return math.MaxUint64
	}
	return s
}

type reader struct {
	b   []byte
	pos int
}

func (r *reader) left() int { return len(r.b) - r.pos }

func (r *reader) need(n int, what string) error {
	if n > r.left() {
		return fmt.Errorf("%w: offset %d: %s: need %d bytes, only %d left (file truncated?)", ErrFormat, r.pos, what, n, r.left())
	}
	return nil
}

func (r *reader) u32(what string) (uint32, error) {
	if err := r.need(4, what); err != nil {
		return 0, err
	}
	b := r.b[r.pos:]
	r.pos += 4
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24, nil
}

func (r *reader) u64(what string) (uint64, error) {
	if err := r.need(8, what); err != nil {
		return 0, err
	}
	b := r.b[r.pos:]
	r.pos += 8
	return le64(b), nil
}

func le64(b []byte) uint64 {
	_ = b[7]
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}

func (r *reader) str(what string) (string, error) {
	return r.strf(func() string { return what })
}

// strf reads a string; what names it in an error and is only called then.
func (r *reader) strf(what func() string) (string, error) {
	at := r.pos
	if r.left() < 8 {
		return "", fmt.Errorf("%w: offset %d: %s length: need 8 bytes, only %d left (file truncated?)", ErrFormat, r.pos, what(), r.left())
	}
	n := le64(r.b[r.pos:])
	r.pos += 8
	if n > uint64(r.left()) {
		return "", fmt.Errorf("%w: offset %d: %s: string length %d exceeds the %d bytes left", ErrFormat, at, what(), n, r.left())
	}
	if n > MaxStringBytes {
		return "", fmt.Errorf("%w: offset %d: %s: string length %d exceeds the limit of %d", ErrFormat, at, what(), n, MaxStringBytes)
	}
	s := string(r.b[r.pos : r.pos+int(n)])
	r.pos += int(n)
	return s, nil
}

// maxNest bounds arrays of arrays, so a hostile file cannot recurse deeply.
const maxNest = 8

func (r *reader) value(t ValueType, key string, depth int) (Value, error) {
	at := r.pos
	if sz := t.scalarSize(); sz > 0 {
		if err := r.need(sz, fmt.Sprintf("value of key %q (%s)", key, t)); err != nil {
			return Value{}, err
		}
		b := r.b[r.pos:]
		r.pos += sz
		return Value{Type: t, v: decodeScalar(t, b)}, nil
	}
	switch t {
	case TypeString:
		s, err := r.str(fmt.Sprintf("value of key %q", key))
		if err != nil {
			return Value{}, err
		}
		return Value{Type: TypeString, v: s}, nil
	case TypeArray:
		if depth >= maxNest {
			return Value{}, fmt.Errorf("%w: offset %d: key %q: arrays nested deeper than %d", ErrFormat, at, key, maxNest)
		}
		et, err := r.u32(fmt.Sprintf("array element type of key %q", key))
		if err != nil {
			return Value{}, err
		}
		elem := ValueType(et)
		n, err := r.u64(fmt.Sprintf("array length of key %q", key))
		if err != nil {
			return Value{}, err
		}
		minSize := uint64(elem.scalarSize())
		switch elem {
		case TypeString:
			minSize = 8
		case TypeArray:
			minSize = 12
		}
		if minSize == 0 {
			return Value{}, fmt.Errorf("%w: offset %d: key %q: unknown array element type %d", ErrFormat, at+8, key, et)
		}
		if n > MaxArrayLen {
			return Value{}, fmt.Errorf("%w: offset %d: key %q: array of %d elements exceeds the limit of %d", ErrFormat, at+12, key, n, MaxArrayLen)
		}
		if n > uint64(r.left())/minSize {
			return Value{}, fmt.Errorf("%w: offset %d: key %q: array of %d %s cannot fit in the %d bytes left", ErrFormat, at+12, key, n, elem, r.left())
		}
		return r.array(elem, int(n), key, depth)
	}
	return Value{}, fmt.Errorf("%w: offset %d: key %q: unknown value type %d", ErrFormat, at-4, key, uint32(t))
}

func decodeScalar(t ValueType, b []byte) any {
	switch t {
	case TypeUint8:
		return b[0]
	case TypeInt8:
		return int8(b[0])
	case TypeBool:
		return b[0] != 0
	case TypeUint16:
		return uint16(b[0]) | uint16(b[1])<<8
	case TypeInt16:
		return int16(uint16(b[0]) | uint16(b[1])<<8)
	case TypeUint32:
		return le32(b)
	case TypeInt32:
		return int32(le32(b))
	case TypeFloat32:
		return math.Float32frombits(le32(b))
	case TypeUint64:
		return le64(b)
	case TypeInt64:
		return int64(le64(b))
	case TypeFloat64:
		return math.Float64frombits(le64(b))
	}
	return nil
}

func le32(b []byte) uint32 {
	_ = b[3]
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

// array decodes n elements; the caller has checked that n elements of the
// minimum size fit in what is left.
func (r *reader) array(elem ValueType, n int, key string, depth int) (Value, error) {
	out := Value{Type: TypeArray, Elem: elem}
	sz := elem.scalarSize()
	if sz > 0 {
		b := r.b[r.pos : r.pos+n*sz]
		r.pos += n * sz
		out.v = decodeArray(elem, b, n)
		return out, nil
	}
	// Strings and inner arrays grow as they are read, so a count that
	// the remaining bytes cannot back costs nothing up front.
	if elem == TypeString {
		a := make([]string, 0, min(n, 4096))
		for i := range n {
			s, err := r.strf(func() string { return fmt.Sprintf("element %d of key %q", i, key) })
			if err != nil {
				return Value{}, err
			}
			a = append(a, s)
		}
		out.v = a
		return out, nil
	}
	a := make([]Value, 0, min(n, 4096))
	for range n {
		v, err := r.value(TypeArray, key, depth+1)
		if err != nil {
			return Value{}, err
		}
		a = append(a, v)
	}
	out.v = a
	return out, nil
}

func decodeArray(elem ValueType, b []byte, n int) any {
	switch elem {
	case TypeUint8:
		return append([]uint8(nil), b...)
	case TypeInt8:
		a := make([]int8, n)
		for i := range a {
			a[i] = int8(b[i])
		}
		return a
	case TypeBool:
		a := make([]bool, n)
		for i := range a {
			a[i] = b[i] != 0
		}
		return a
	case TypeUint16:
		a := make([]uint16, n)
		for i := range a {
			a[i] = uint16(b[2*i]) | uint16(b[2*i+1])<<8
		}
		return a
	case TypeInt16:
		a := make([]int16, n)
		for i := range a {
			a[i] = int16(uint16(b[2*i]) | uint16(b[2*i+1])<<8)
		}
		return a
	case TypeUint32:
		a := make([]uint32, n)
		for i := range a {
			a[i] = le32(b[4*i:])
		}
		return a
	case TypeInt32:
		a := make([]int32, n)
		for i := range a {
			a[i] = int32(le32(b[4*i:]))
		}
		return a
	case TypeFloat32:
		a := make([]float32, n)
		for i := range a {
			a[i] = math.Float32frombits(le32(b[4*i:]))
		}
		return a
	case TypeUint64:
		a := make([]uint64, n)
		for i := range a {
			a[i] = le64(b[8*i:])
		}
		return a
	case TypeInt64:
		a := make([]int64, n)
		for i := range a {
			a[i] = int64(le64(b[8*i:]))
		}
		return a
	case TypeFloat64:
		a := make([]float64, n)
		for i := range a {
			a[i] = math.Float64frombits(le64(b[8*i:]))
		}
		return a
	}
	return nil
}

func (r *reader) tensorInfo(i uint64) (TensorInfo, error) {
	at := r.pos
	name, err := r.str(fmt.Sprintf("name of tensor %d", i))
	if err != nil {
		return TensorInfo{}, err
	}
	nd, err := r.u32(fmt.Sprintf("dimension count of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	if nd == 0 || nd > MaxDims {
		return TensorInfo{}, fmt.Errorf("%w: offset %d: tensor %q: %d dimensions, want 1 to %d", ErrFormat, r.pos-4, name, nd, MaxDims)
	}
	ti := TensorInfo{Name: name, Dims: make([]uint64, nd)}
	elems := uint64(1)
	for d := range ti.Dims {
		x, err := r.u64(fmt.Sprintf("dimension %d of tensor %q", d, name))
		if err != nil {
			return TensorInfo{}, err
		}
		hi, lo := bits.Mul64(elems, x)
		if hi != 0 || lo > math.MaxInt64 {
			return TensorInfo{}, fmt.Errorf("%w: offset %d: tensor %q: dimensions %v overflow", ErrFormat, r.pos-8, name, ti.Dims[:d+1])
		}
		ti.Dims[d] = x
		elems = lo
	}
	tt, err := r.u32(fmt.Sprintf("type of tensor %q", name))
	if err != nil {
		return TensorInfo{}, err
	}
	ti.Type = ggml.Type(tt)
	if !ti.Type.Known() {
		return TensorInfo{}, fmt.Errorf("%w: offset %d: tensor %q: unknown tensor type id %d", ErrFormat, r.pos-4, name, tt)
	}
	bs := uint64(ti.Type.BlockSize())
	if ti.Dims[0]%bs != 0 {
		return TensorInfo{}, fmt.Errorf("%w: offset %d: tensor %q: row length %d is not a multiple of %s's block size %d", ErrFormat, at, name, ti.Dims[0], ti.Type, bs)
	}
	if hi, lo := bits.Mul64(elems/bs, uint64(ti.Type.BlockBytes())); hi != 0 || lo > math.MaxInt64 {
		return TensorInfo{}, fmt.Errorf("%w: offset %d: tensor %q: byte size overflows", ErrFormat, at, name)
	}
	if ti.Offset, err = r.u64(fmt.Sprintf("data offset of tensor %q", name)); err != nil {
		return TensorInfo{}, err
	}
	return ti, nil
}
