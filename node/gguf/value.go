package gguf

import (
	"fmt"
	"math"
	"reflect"
)

// ValueType is the type tag of a metadata value, as written in the file.
type ValueType uint32

// Metadata value types.
const (
	TypeUint8   ValueType = 0
	TypeInt8    ValueType = 1
	TypeUint16  ValueType = 2
	TypeInt16   ValueType = 3
	TypeUint32  ValueType = 4
	TypeInt32   ValueType = 5
	TypeFloat32 ValueType = 6
	TypeBool    ValueType = 7
	TypeString  ValueType = 8
	TypeArray   ValueType = 9
	TypeUint64  ValueType = 10
	TypeInt64   ValueType = 11
	TypeFloat64 ValueType = 12
)

var valueTypeNames = [...]string{"uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "bool", "string", "array", "uint64", "int64", "float64"}

func (t ValueType) String() string {
	if int(t) < len(valueTypeNames) {
		return valueTypeNames[t]
	}
	return fmt.Sprintf("valuetype(%d)", uint32(t))
}

// scalarSize is the encoded size of a fixed-size scalar, 0 for string,
// array and unknown types.
func (t ValueType) scalarSize() int {
	switch t {
	case TypeUint8, TypeInt8, TypeBool:
		return 1
	case TypeUint16, TypeInt16:
		return 2
	case TypeUint32, TypeInt32, TypeFloat32:
		return 4
	case TypeUint64, TypeInt64, TypeFloat64:
		return 8
	}
	return 0
}

// Value is one metadata value. Scalars hold the Go type matching their
// tag (uint8 … float64, bool, string); arrays hold a typed slice ([]uint8 …
// []float64, []bool, []string) or, for arrays of arrays, []Value. Values
// never refer to the file's mapping.
type Value struct {
	Type ValueType
	// Elem is the element type of an array; unused for scalars.
	Elem ValueType
	v    any
}

// Scalar is the set of Go types a metadata scalar can have.
type Scalar interface {
	uint8 | int8 | uint16 | int16 | uint32 | int32 | float32 | bool | string | uint64 | int64 | float64
}

// NewValue returns a scalar Value of x's type.
func NewValue[T Scalar](x T) Value {
	return Value{Type: typeOf(any(x)), v: x}
}

// NewArray returns an array Value of xs's element type. The slice is
// retained, not copied.
func NewArray[T Scalar](xs []T) Value {
	var zero T
	return Value{Type: TypeArray, Elem: typeOf(any(zero)), v: xs}
}

// NewNestedArray returns an array of arrays. Every element must be an
// array; the element types of the inner arrays may differ.
func NewNestedArray(xs []Value) Value {
	return Value{Type: TypeArray, Elem: TypeArray, v: xs}
}

func typeOf(x any) ValueType {
	switch x.(type) {
	case uint8:
		return TypeUint8
	case int8:
		return TypeInt8
	case uint16:
		return TypeUint16
	case int16:
		return TypeInt16
	case uint32:
		return TypeUint32
	case int32:
		return TypeInt32
	case float32:
		return TypeFloat32
	case bool:
		return TypeBool
	case string:
		return TypeString
	case uint64:
		return TypeUint64
	case int64:
		return TypeInt64
	case float64:
		return TypeFloat64
	}
	panic(fmt.Sprintf("BUG: gguf: no value type for %T", x))
}

// Any returns the value as its Go type (see Value).
func (v Value) Any() any { return v.v }

// Len returns the number of elements of an array, 0 for a scalar.
func (v Value) Len() int {
	switch a := v.v.(type) {
	case []uint8:
		return len(a)
	case []int8:
		return len(a)
	case []uint16:
		return len(a)
	case []int16:
		return len(a)
	case []uint32:
		return len(a)
	case []int32:
		return len(a)
	case []float32:
		return len(a)
	case []bool:
		return len(a)
	case []string:
		return len(a)
	case []uint64:
		return len(a)
	case []int64:
		return len(a)
	case []float64:
		return len(a)
	case []Value:
		return len(a)
	}
	return 0
}

// Uint returns an integer scalar of any width as uint64; false for other
// types and negative values.
func (v Value) Uint() (uint64, bool) {
	switch x := v.v.(type) {
	case uint8:
		return uint64(x), true
	case uint16:
		return uint64(x), true
	case uint32:
		return uint64(x), true
	case uint64:
		return x, true
	}
	if i, ok := v.signed(); ok && i >= 0 {
		return uint64(i), true
	}
	return 0, false
}

func (v Value) signed() (int64, bool) {
	switch x := v.v.(type) {
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// Int returns an integer scalar of any width as int64; false for other
// types and for uint64 values above MaxInt64.
func (v Value) Int() (int64, bool) {
	if i, ok := v.signed(); ok {
		return i, true
	}
	if u, ok := v.Uint(); ok && u <= math.MaxInt64 {
		return int64(u), true
	}
	return 0, false
}

// Float returns a float or integer scalar as float64.
func (v Value) Float() (float64, bool) {
	switch x := v.v.(type) {
	case float32:
		return float64(x), true
	case float64:
		return x, true
	}
	if i, ok := v.signed(); ok {
		return float64(i), true
	}
	if u, ok := v.Uint(); ok {
		return float64(u), true
	}
	return 0, false
}

// Bool returns a bool scalar.
func (v Value) Bool() (bool, bool) {
	b, ok := v.v.(bool)
	return b, ok
}

// String returns a string scalar.
func (v Value) String() (string, bool) {
	s, ok := v.v.(string)
	return s, ok
}

// Strings returns an array of strings.
func (v Value) Strings() ([]string, bool) {
	s, ok := v.v.([]string)
	return s, ok
}

// Float32s returns an array of float32 (float64 arrays are converted).
func (v Value) Float32s() ([]float32, bool) {
	switch a := v.v.(type) {
	case []float32:
		return a, true
	case []float64:
		out := make([]float32, len(a))
		for i, x := range a {
			out[i] = float32(x)
		}
		return out, true
	}
	return nil, false
}

// Int32s returns an array of int32. Arrays of other integer types are
// converted when every element fits.
func (v Value) Int32s() ([]int32, bool) {
	if a, ok := v.v.([]int32); ok {
		return a, true
	}
	n := v.Len()
	if v.Type != TypeArray || v.Elem == TypeArray || v.Elem == TypeString || v.Elem == TypeBool || v.Elem == TypeFloat32 || v.Elem == TypeFloat64 {
		return nil, false
	}
	out := make([]int32, n)
	for i := range n {
		x, ok := v.Index(i).Int()
		if !ok || x < math.MinInt32 || x > math.MaxInt32 {
			return nil, false
		}
		out[i] = int32(x)
	}
	return out, true
}

// Index returns element i of an array as a Value (zero Value when out of
// range or not an array).
func (v Value) Index(i int) Value {
	if i < 0 || i >= v.Len() {
		return Value{}
	}
	switch a := v.v.(type) {
	case []uint8:
		return NewValue(a[i])
	case []int8:
		return NewValue(a[i])
	case []uint16:
		return NewValue(a[i])
	case []int16:
		return NewValue(a[i])
	case []uint32:
		return NewValue(a[i])
	case []int32:
		return NewValue(a[i])
	case []float32:
		return NewValue(a[i])
	case []bool:
		return NewValue(a[i])
	case []string:
		return NewValue(a[i])
	case []uint64:
		return NewValue(a[i])
	case []int64:
		return NewValue(a[i])
	case []float64:
		return NewValue(a[i])
	case []Value:
		return a[i]
	}
	return Value{}
}

// Equal reports whether v and o have the same type and contents.
func (v Value) Equal(o Value) bool {
	return v.Type == o.Type && v.Elem == o.Elem && reflect.DeepEqual(v.v, o.v)
}

// KV is one metadata entry.
type KV struct {
	Key   string
	Value Value
}
