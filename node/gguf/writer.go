package gguf

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"helexa/node/ggml"
)

// Writer builds a GGUF (version 3) file: metadata in the order set, then
// tensor infos, then tensor data, each tensor aligned. Tensor data can be
// given as bytes or as a function that streams them, so a model larger
// than memory can be written. A Writer is not safe for concurrent use.
type Writer struct {
	// Alignment of tensor data; 0 means general.alignment if set, else 32.
	Alignment int

	kvs     []KV
	index   map[string]int
	tensors []wtensor
	names   map[string]bool
}

type wtensor struct {
	info  TensorInfo
	data  []byte
	write func(io.Writer) error
}

// NewWriter returns an empty Writer.
func NewWriter() *Writer {
	return &Writer{index: map[string]int{}, names: map[string]bool{}}
}

// Set sets key to v, replacing an earlier value in place or appending.
func (w *Writer) Set(key string, v Value) {
	if i, ok := w.index[key]; ok {
		w.kvs[i].Value = v
		return
	}
	w.index[key] = len(w.kvs)
	w.kvs = append(w.kvs, KV{Key: key, Value: v})
}

// Delete removes key if present.
func (w *Writer) Delete(key string) {
	i, ok := w.index[key]
	if !ok {
		return
	}
	w.kvs = append(w.kvs[:i], w.kvs[i+1:]...)
	delete(w.index, key)
	for j := i; j < len(w.kvs); j++ {
		w.index[w.kvs[j].Key] = j
	}
}

// AddTensor adds a tensor with its bytes (retained, not copied).
func (w *Writer) AddTensor(name string, t ggml.Type, dims []uint64, data []byte) error {
	ti, err := w.addInfo(name, t, dims)
	if err != nil {
		return err
	}
	if uint64(len(data)) != ti.Size() {
		return fmt.Errorf("gguf: tensor %q: %d bytes given, %s %v takes %d", name, len(data), t, dims, ti.Size())
	}
	w.tensors = append(w.tensors, wtensor{info: ti, data: data})
	return nil
}

// AddTensorFunc adds a tensor whose bytes write streams when the file is
// written; it must write exactly the tensor's size.
func (w *Writer) AddTensorFunc(name string, t ggml.Type, dims []uint64, write func(io.Writer) error) error {
	ti, err := w.addInfo(name, t, dims)
	if err != nil {
		return err
	}
	w.tensors = append(w.tensors, wtensor{info: ti, write: write})
	return nil
}

func (w *Writer) addInfo(name string, t ggml.Type, dims []uint64) (TensorInfo, error) {
	if w.names[name] {
		return TensorInfo{}, fmt.Errorf("gguf: duplicate tensor %q", name)
	}
	if len(dims) == 0 || len(dims) > MaxDims {
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q: %d dimensions, want 1 to %d", name, len(dims), MaxDims)
	}
	if !t.Known() {
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q: unknown type %s", name, t)
	}
	n := uint64(1)
	for _, d := range dims {
		if d != 0 && n > math.MaxInt64/d {
			return TensorInfo{}, fmt.Errorf("gguf: tensor %q: dimensions %v overflow", name, dims)
		}
		n *= d
	}
	if dims[0]%uint64(t.BlockSize()) != 0 {
		return TensorInfo{}, fmt.Errorf("gguf: tensor %q: row length %d is not a multiple of %s's block size %d", name, dims[0], t, t.BlockSize())
	}
	w.names[name] = true
	ti := TensorInfo{Name: name, Type: t, Dims: append([]uint64(nil), dims...)}
	return ti, nil
}

func (w *Writer) alignment() (int, error) {
	a := w.Alignment
	if a == 0 {
		a = DefaultAlignment
		if i, ok := w.index["general.alignment"]; ok {
			u, ok := w.kvs[i].Value.Uint()
			if !ok {
				return 0, fmt.Errorf("gguf: general.alignment is %s, want uint32", w.kvs[i].Value.Type)
			}
			a = int(min(u, 1<<31))
		}
	}
	if a <= 0 || a&(a-1) != 0 || a > 1<<30 {
		return 0, fmt.Errorf("gguf: alignment %d is not a power of two (up to 2^30)", a)
	}
	return a, nil
}

// WriteFile writes the file to path (created or truncated).
func (w *Writer) WriteFile(path string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("creating %s: %w", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("closing %s: %w", path, cerr)
		}
	}()
	if _, err := w.WriteTo(f); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// WriteTo writes the file to out.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	align, err := w.alignment()
	if err != nil {
		return 0, err
	}
	if _, ok := w.index["general.alignment"]; ok || align != DefaultAlignment {
		w.Set("general.alignment", NewValue(uint32(align)))
	}
	// Lay out the data section.
	off := uint64(0)
	for i := range w.tensors {
		ti := &w.tensors[i].info
		ti.Offset = off
		off += (ti.Size() + uint64(align) - 1) / uint64(align) * uint64(align)
	}

	cw := &countWriter{w: bufio.NewWriterSize(out, 1<<20)}
	e := &enc{w: cw}
	e.raw([]byte(Magic))
	e.u32(3)
	e.u64(uint64(len(w.tensors)))
	e.u64(uint64(len(w.kvs)))
	for _, kv := range w.kvs {
		e.str(kv.Key)
		if err := e.value(kv.Value, kv.Key); err != nil {
			return cw.n, err
		}
	}
	for _, t := range w.tensors {
		e.str(t.info.Name)
		e.u32(uint32(len(t.info.Dims)))
		for _, d := range t.info.Dims {
			e.u64(d)
		}
		e.u32(uint32(t.info.Type))
		e.u64(t.info.Offset)
	}
	e.pad(align)
	if e.err != nil {
		return cw.n, e.err
	}
	for _, t := range w.tensors {
		start := cw.n
		if t.write != nil {
			if err := t.write(cw); err != nil {
				return cw.n, fmt.Errorf("gguf: writing tensor %q: %w", t.info.Name, err)
			}
		} else {
			e.raw(t.data)
		}
		if e.err != nil {
			return cw.n, e.err
		}
		if got := uint64(cw.n - start); got != t.info.Size() {
			return cw.n, fmt.Errorf("gguf: tensor %q: %d bytes written, want %d", t.info.Name, got, t.info.Size())
		}
		e.pad(align)
	}
	if e.err == nil {
		e.err = cw.w.Flush()
	}
	return cw.n, e.err
}

type countWriter struct {
	w *bufio.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

type enc struct {
	w   *countWriter
	err error
	buf [8]byte
}

func (e *enc) raw(b []byte) {
	if e.err == nil {
		_, e.err = e.w.Write(b)
	}
}

func (e *enc) u32(x uint32) {
	b := e.buf[:4]
	b[0], b[1], b[2], b[3] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
	e.raw(b)
}

func (e *enc) u64(x uint64) {
	e.u32(uint32(x))
	e.u32(uint32(x >> 32))
}

func (e *enc) str(s string) {
	e.u64(uint64(len(s)))
	if e.err == nil {
		_, e.err = e.w.w.WriteString(s)
		e.w.n += int64(len(s))
	}
}

func (e *enc) pad(align int) {
	if r := int(e.w.n % int64(align)); r != 0 {
		e.raw(make([]byte, align-r))
	}
}

var errBadValue = errors.New("inconsistent value")

func (e *enc) value(v Value, key string) error {
	e.u32(uint32(v.Type))
	return e.payload(v, key)
}

func (e *enc) payload(v Value, key string) error {
	if v.Type == TypeArray {
		e.u32(uint32(v.Elem))
		e.u64(uint64(v.Len()))
		if nested, ok := v.v.([]Value); ok {
			if v.Elem != TypeArray {
				return fmt.Errorf("gguf: key %q: %w: nested array with element type %s", key, errBadValue, v.Elem)
			}
			for _, x := range nested {
				if x.Type != TypeArray {
					return fmt.Errorf("gguf: key %q: %w: element of array of arrays is %s", key, errBadValue, x.Type)
				}
				if err := e.payload(x, key); err != nil {
					return err
				}
			}
			return nil
		}
		n := v.Len()
		if n == 0 && v.v == nil {
			return nil
		}
		if v.Elem != TypeArray && v.v != nil && typeOfSlice(v.v) == v.Elem {
			e.slice(v.v)
			return nil
		}
		for i := range n {
			x := v.Index(i)
			if x.Type != v.Elem {
				return fmt.Errorf("gguf: key %q: %w: array of %s holds %s", key, errBadValue, v.Elem, x.Type)
			}
			e.scalar(x)
		}
		return nil
	}
	if v.v == nil || typeOf(v.v) != v.Type {
		return fmt.Errorf("gguf: key %q: %w: type %s holds %T", key, errBadValue, v.Type, v.v)
	}
	e.scalar(v)
	return nil
}

func (e *enc) scalar(v Value) {
	switch x := v.v.(type) {
	case uint8:
		e.raw([]byte{x})
	case int8:
		e.raw([]byte{byte(x)})
	case bool:
		if x {
			e.raw([]byte{1})
		} else {
			e.raw([]byte{0})
		}
	case uint16:
		e.raw([]byte{byte(x), byte(x >> 8)})
	case int16:
		e.raw([]byte{byte(x), byte(x >> 8)})
	case uint32:
		e.u32(x)
	case int32:
		e.u32(uint32(x))
	case float32:
		e.u32(math.Float32bits(x))
	case uint64:
		e.u64(x)
	case int64:
		e.u64(uint64(x))
	case float64:
		e.u64(math.Float64bits(x))
	case string:
		e.str(x)
	}
}

// typeOfSlice returns the element type of a typed slice, or TypeArray for
// anything else.
func typeOfSlice(x any) ValueType {
	switch x.(type) {
	case []uint8:
		return TypeUint8
	case []int8:
		return TypeInt8
	case []uint16:
		return TypeUint16
	case []int16:
		return TypeInt16
	case []uint32:
		return TypeUint32
	case []int32:
		return TypeInt32
	case []float32:
		return TypeFloat32
	case []bool:
		return TypeBool
	case []string:
		return TypeString
	case []uint64:
		return TypeUint64
	case []int64:
		return TypeInt64
	case []float64:
		return TypeFloat64
	}
	return TypeArray
}

// slice encodes the elements of a typed slice without boxing each one.
func (e *enc) slice(x any) {
	switch a := x.(type) {
	case []uint8:
		e.raw(a)
	case []int8:
		for _, v := range a {
			e.raw([]byte{byte(v)})
		}
	case []bool:
		for _, v := range a {
			if v {
				e.raw([]byte{1})
			} else {
				e.raw([]byte{0})
			}
		}
	case []uint16:
		for _, v := range a {
			e.raw([]byte{byte(v), byte(v >> 8)})
		}
	case []int16:
		for _, v := range a {
			e.raw([]byte{byte(v), byte(v >> 8)})
		}
	case []uint32:
		for _, v := range a {
			e.u32(v)
		}
	case []int32:
		for _, v := range a {
			e.u32(uint32(v))
		}
	case []float32:
		for _, v := range a {
			e.u32(math.Float32bits(v))
		}
	case []string:
		for _, v := range a {
			e.str(v)
		}
	case []uint64:
		for _, v := range a {
			e.u64(v)
		}
	case []int64:
		for _, v := range a {
			e.u64(uint64(v))
		}
	case []float64:
		for _, v := range a {
			e.u64(math.Float64bits(v))
		}
	}
}
