// Package safetensors reads Hugging Face safetensors files: a single
// model.safetensors or shards listed by model.safetensors.index.json.
// Every shard is memory-mapped; tensor data are slices of the mappings.
//
// File layout: an 8-byte little-endian header length N, N bytes of JSON
// mapping tensor names to {"dtype", "shape", "data_offsets": [begin, end]}
// (offsets relative to the byte after the header) plus an optional
// "__metadata__" object of strings, then the data.
package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"helexa/node/mmapfile"
)

// ErrFormat is wrapped by every error about a malformed file.
var ErrFormat = errors.New("malformed safetensors")

// MaxHeaderBytes bounds the JSON header (as the reference implementation
// does), so a hostile length cannot make the reader allocate.
const MaxHeaderBytes = 100 << 20

// dtypeSizes are the element sizes of the dtypes the format defines.
var dtypeSizes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

// DTypeSize returns the byte size of one element of dtype, 0 if unknown.
func DTypeSize(dtype string) int { return dtypeSizes[dtype] }

// Tensor is one tensor. Shape is in the file's (row-major, PyTorch) order:
// the last dimension is contiguous. Data is a slice of a read-only mapping,
// valid until the Model is closed.
type Tensor struct {
	Name  string
	DType string // "F32", "F16", "BF16", … (see DTypeSize)
	Shape []int
	Data  []byte
}

// Elements returns the product of Shape.
func (t Tensor) Elements() int {
	n := 1
	for _, d := range t.Shape {
		n *= d
	}
	return n
}

// Model is an opened safetensors model (one file or a set of shards).
// It is safe for concurrent reads; Close must not race with them.
type Model struct {
	// Metadata merges the "__metadata__" objects of every shard.
	Metadata map[string]string

	tensors map[string]Tensor
	files   []*mmapfile.File
}

// Open opens the model in dir: model.safetensors.index.json when present
// (every shard it names), else model.safetensors.
func Open(dir string) (*Model, error) {
	idx := filepath.Join(dir, "model.safetensors.index.json")
	if b, err := os.ReadFile(idx); err == nil {
		shards, err := parseIndex(b)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", idx, err)
		}
		return openShards(dir, shards)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", idx, err)
	}
	single := filepath.Join(dir, "model.safetensors")
	if _, err := os.Stat(single); err != nil {
		return nil, fmt.Errorf("opening safetensors model in %s: neither model.safetensors.index.json nor model.safetensors: %w", dir, err)
	}
	return openShards(dir, map[string][]string{"model.safetensors": nil})
}

// OpenFile opens one safetensors file.
func OpenFile(path string) (*Model, error) {
	m := &Model{Metadata: map[string]string{}, tensors: map[string]Tensor{}}
	if err := m.add(path, nil); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

// index is model.safetensors.index.json.
type index struct {
	WeightMap map[string]string `json:"weight_map"`
}

// parseIndex returns shard file name → tensor names the index assigns it.
func parseIndex(b []byte) (map[string][]string, error) {
	var ix index
	if err := json.Unmarshal(b, &ix); err != nil {
		return nil, fmt.Errorf("%w: index: %v", ErrFormat, err)
	}
	if len(ix.WeightMap) == 0 {
		return nil, fmt.Errorf("%w: index has no weight_map entries", ErrFormat)
	}
	shards := map[string][]string{}
	for name, file := range ix.WeightMap {
		if file == "" || file != filepath.Base(file) || file == "." || file == ".." || strings.ContainsAny(file, `/\`) {
			return nil, fmt.Errorf("%w: index: tensor %q maps to %q, want a file name in the model folder", ErrFormat, name, file)
		}
		shards[file] = append(shards[file], name)
	}
	return shards, nil
}

func openShards(dir string, shards map[string][]string) (*Model, error) {
	m := &Model{Metadata: map[string]string{}, tensors: map[string]Tensor{}}
	names := make([]string, 0, len(shards))
	for f := range shards {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		if err := m.add(filepath.Join(dir, f), shards[f]); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

// add maps one file and registers its tensors; want, when non-nil, lists
// tensors the index says the file holds (each must be there).
func (m *Model) add(path string, want []string) error {
	mm, err := mmapfile.Open(path)
	if err != nil {
		return err
	}
	m.files = append(m.files, mm)
	tensors, meta, err := Parse(mm.Bytes())
	if err != nil {
		return fmt.Errorf("reading %s: %w", path, err)
	}
	for _, t := range tensors {
		if _, dup := m.tensors[t.Name]; dup {
			return fmt.Errorf("reading %s: %w: tensor %q is also in another shard", path, ErrFormat, t.Name)
		}
		m.tensors[t.Name] = t
	}
	for k, v := range meta {
		m.Metadata[k] = v
	}
	for _, name := range want {
		if _, ok := m.tensors[name]; !ok {
			return fmt.Errorf("reading %s: %w: the index lists tensor %q in this shard, but it is not there", path, ErrFormat, name)
		}
	}
	return nil
}

// Tensor returns the named tensor.
func (m *Model) Tensor(name string) (Tensor, bool) {
	t, ok := m.tensors[name]
	return t, ok
}

// Names returns every tensor name, sorted.
func (m *Model) Names() []string {
	names := make([]string, 0, len(m.tensors))
	for n := range m.tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close unmaps every shard; tensor data are invalid afterwards.
func (m *Model) Close() error {
	var errs []error
	for _, f := range m.files {
		errs = append(errs, f.Close())
	}
	m.files = nil
	m.tensors = nil
	return errors.Join(errs...)
}

type headerEntry struct {
	DType       string
	Shape       []int64
	DataOffsets [2]uint64
}

// Parse parses a whole safetensors file held in data and returns its
// tensors (in data order; Data are slices of data) and metadata.
func Parse(data []byte) ([]Tensor, map[string]string, error) {
	if len(data) < 8 {
		return nil, nil, fmt.Errorf("%w: %d bytes, too short for the 8-byte header length", ErrFormat, len(data))
	}
	n := uint64(data[0]) | uint64(data[1])<<8 | uint64(data[2])<<16 | uint64(data[3])<<24 |
		uint64(data[4])<<32 | uint64(data[5])<<40 | uint64(data[6])<<48 | uint64(data[7])<<56
	if n > MaxHeaderBytes {
		return nil, nil, fmt.Errorf("%w: header length %d exceeds the %d-byte limit", ErrFormat, n, MaxHeaderBytes)
	}
	if n > uint64(len(data)-8) {
		return nil, nil, fmt.Errorf("%w: header length %d exceeds the %d bytes after it (file truncated?)", ErrFormat, n, len(data)-8)
	}
	hdr := data[8 : 8+n]
	body := data[8+n:]
	entries, order, meta, err := parseHeader(hdr)
	if err != nil {
		return nil, nil, err
	}
	tensors := make([]Tensor, 0, len(order))
	for _, name := range order {
		e := entries[name]
		t, err := checkEntry(name, e, uint64(len(body)))
		if err != nil {
			return nil, nil, err
		}
		t.Data = body[e.DataOffsets[0]:e.DataOffsets[1]:e.DataOffsets[1]]
		tensors = append(tensors, t)
	}
	// Tensors must not overlap.
	slices.SortStableFunc(tensors, func(a, b Tensor) int {
		return cmpU(entries[a.Name].DataOffsets[0], entries[b.Name].DataOffsets[0])
	})
	for i := 1; i < len(tensors); i++ {
		prev, cur := entries[tensors[i-1].Name], entries[tensors[i].Name]
		if cur.DataOffsets[0] < prev.DataOffsets[1] {
			return nil, nil, fmt.Errorf("%w: tensor %q (bytes %d..%d) overlaps tensor %q (bytes %d..%d)", ErrFormat,
				tensors[i].Name, cur.DataOffsets[0], cur.DataOffsets[1], tensors[i-1].Name, prev.DataOffsets[0], prev.DataOffsets[1])
		}
	}
	return tensors, meta, nil
}

func cmpU(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func checkEntry(name string, e headerEntry, bodyLen uint64) (Tensor, error) {
	size, ok := dtypeSizes[e.DType]
	if !ok {
		return Tensor{}, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrFormat, name, e.DType)
	}
	t := Tensor{Name: name, DType: e.DType, Shape: make([]int, len(e.Shape))}
	elems := uint64(1)
	for i, d := range e.Shape {
		if d < 0 {
			return Tensor{}, fmt.Errorf("%w: tensor %q: negative dimension %d in shape %v", ErrFormat, name, d, e.Shape)
		}
		hi, lo := bits.Mul64(elems, uint64(d))
		if hi != 0 || lo > math.MaxInt64 {
			return Tensor{}, fmt.Errorf("%w: tensor %q: shape %v overflows", ErrFormat, name, e.Shape)
		}
		elems = lo
		t.Shape[i] = int(d)
	}
	hi, want := bits.Mul64(elems, uint64(size))
	if hi != 0 || want > math.MaxInt64 {
		return Tensor{}, fmt.Errorf("%w: tensor %q: byte size of shape %v overflows", ErrFormat, name, e.Shape)
	}
	b, end := e.DataOffsets[0], e.DataOffsets[1]
	if b > end {
		return Tensor{}, fmt.Errorf("%w: tensor %q: data_offsets [%d, %d] run backwards", ErrFormat, name, b, end)
	}
	if end > bodyLen {
		return Tensor{}, fmt.Errorf("%w: tensor %q: data_offsets [%d, %d] run past the %d data bytes (file truncated?)", ErrFormat, name, b, end, bodyLen)
	}
	if end-b != want {
		return Tensor{}, fmt.Errorf("%w: tensor %q: %s %v takes %d bytes, data_offsets [%d, %d] hold %d", ErrFormat, name, e.DType, e.Shape, want, b, end, end-b)
	}
	return t, nil
}

// parseHeader decodes the JSON header, refusing duplicate names and
// unknown fields, and keeps the file's tensor order.
func parseHeader(hdr []byte) (map[string]headerEntry, []string, map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(hdr))
	tok, err := dec.Token()
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, nil, nil, fmt.Errorf("%w: header is not a JSON object", ErrFormat)
	}
	entries := map[string]headerEntry{}
	var order []string
	meta := map[string]string{}
	seenMeta := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
		}
		name, ok := tok.(string)
		if !ok {
			return nil, nil, nil, fmt.Errorf("%w: header: key %v is not a string", ErrFormat, tok)
		}
		if name == "__metadata__" {
			if seenMeta {
				return nil, nil, nil, fmt.Errorf("%w: header: duplicate __metadata__", ErrFormat)
			}
			seenMeta = true
			if err := dec.Decode(&meta); err != nil {
				return nil, nil, nil, fmt.Errorf("%w: header: __metadata__ must map strings to strings: %v", ErrFormat, err)
			}
			continue
		}
		if _, dup := entries[name]; dup {
			return nil, nil, nil, fmt.Errorf("%w: header: duplicate tensor %q", ErrFormat, name)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: header: tensor %q: %v", ErrFormat, name, err)
		}
		var e struct {
			DType       *string    `json:"dtype"`
			Shape       *[]int64   `json:"shape"`
			DataOffsets *[2]uint64 `json:"data_offsets"`
		}
		ed := json.NewDecoder(bytes.NewReader(raw))
		ed.DisallowUnknownFields()
		if err := ed.Decode(&e); err != nil {
			return nil, nil, nil, fmt.Errorf("%w: header: tensor %q: %v", ErrFormat, name, err)
		}
		if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
			return nil, nil, nil, fmt.Errorf("%w: header: tensor %q lacks dtype, shape or data_offsets", ErrFormat, name)
		}
		entries[name] = headerEntry{DType: *e.DType, Shape: *e.Shape, DataOffsets: *e.DataOffsets}
		order = append(order, name)
	}
	if _, err := dec.Token(); err != nil {
		return nil, nil, nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	// Anything but padding spaces after the object is an error.
	rest := hdr[dec.InputOffset():]
	if len(bytes.Trim(rest, " \x00")) != 0 {
		return nil, nil, nil, fmt.Errorf("%w: header: trailing bytes after the JSON object", ErrFormat)
	}
	return entries, order, meta, nil
}
