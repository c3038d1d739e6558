package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"helexa/node/toolcall"
)

// maxBody bounds request bodies.
const maxBody = 64 << 20

// decodeBody reads a JSON body into v; a malformed one is a 400 that
// names the problem.
func decodeBody(c echo.Context, v any) error {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, maxBody)
	var buf bytes.Buffer
	if n := c.Request().ContentLength; n > 0 && n <= maxBody {
		buf.Grow(int(n) + 1) // one allocation, not a doubling series
	}
	_, err := buf.ReadFrom(r)
	data := buf.Bytes()
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return &apiError{Status: http.StatusRequestEntityTooLarge, Message: fmt.Sprintf("request body over %d bytes", mbe.Limit)}
		}
		return badRequest("", "reading the request body: %v", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return badRequest("", "the request body is empty; a JSON object is required")
	}
	if err := json.Unmarshal(data, v); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := apiFieldPath(reflect.TypeOf(v), te.Field)
			if field == "" {
				return badRequest("", "the request body must be %s, got %s", jsonKind(te.Type), te.Value)
			}
			return badRequest(field, "%s must be %s, got %s", field, jsonKind(te.Type), te.Value)
		}
		var se *json.SyntaxError
		if errors.As(err, &se) {
			return badRequest("", "the request body is not valid JSON: %v (at byte %d)", se, se.Offset)
		}
		return badRequest("", "the request body is not valid JSON: %v", err)
	}
	return nil
}

// apiFieldPath turns the field path encoding/json reports
// ("samplingFields.max_tokens": Go names of embedded structs, then JSON
// names) into the path as the API spells it ("max_tokens").
func apiFieldPath(t reflect.Type, field string) string {
	if field == "" {
		return ""
	}
	var out []string
	for _, part := range strings.Split(field, ".") {
		t = elemType(t)
		if t == nil || t.Kind() != reflect.Struct {
			out = append(out, part)
			t = nil
			continue
		}
		sf, embedded, ok := findField(t, part)
		switch {
		case !ok:
			out = append(out, part)
			t = nil
		case embedded:
			t = sf.Type
		default:
			out = append(out, part)
			t = sf.Type
		}
	}
	return strings.Join(out, ".")
}

// elemType follows pointers, slices, arrays and maps to the type a path
// component names.
func elemType(t reflect.Type) reflect.Type {
	for t != nil {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			t = t.Elem()
		default:
			return t
		}
	}
	return nil
}

// findField finds the struct field a path component names: an embedded
// struct by its Go name, or a field by its JSON name.
func findField(t reflect.Type, name string) (reflect.StructField, bool, bool) {
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous && sf.Name == name {
			return sf, true, true
		}
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		tag, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if tag == name || (tag == "" && strings.EqualFold(sf.Name, name)) {
			return sf, false, true
		}
		if sf.Anonymous {
			if inner := elemType(sf.Type); inner != nil && inner.Kind() == reflect.Struct {
				if f, _, ok := findField(inner, name); ok {
					return f, false, true
				}
			}
		}
	}
	return reflect.StructField{}, false, false
}

// jsonKind names a Go type as a JSON value kind.
func jsonKind(t reflect.Type) string {
	t = derefType(t)
	if t == nil {
		return "a JSON value"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return fmt.Sprintf("an integer that fits in %d bits", t.Bits())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return fmt.Sprintf("a non-negative integer that fits in %d bits", t.Bits())
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a JSON value"
}

func derefType(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// modelEntry is one row of GET /models.
type modelEntry struct {
	ID            string   `json:"id"`
	Object        string   `json:"object"`
	Status        string   `json:"status"`
	Format        string   `json:"format"`
	Arch          string   `json:"arch,omitempty"`
	Quant         string   `json:"quant"`
	SizeBytes     int64    `json:"size_bytes"`
	MemEstimateMB int64    `json:"mem_estimate_mb"`
	Devices       []int    `json:"devices"`
	ContextLength int      `json:"context_length"`
	Capabilities  []string `json:"capabilities"`
	InFlight      int      `json:"in_flight"`
	QueueDepth    int      `json:"queue_depth"`
	LoadedAt      int64    `json:"loaded_at,omitempty"`
	Error         string   `json:"error,omitempty"`

	// ParamCount and ActiveParamCount: weights in the model, and those
	// one token reads (fewer for mixture-of-experts models).
	ParamCount       int64 `json:"param_count,omitempty"`
	ActiveParamCount int64 `json:"active_param_count,omitempty"`
}

// entryView describes an entry; called with s.mu held.
func (s *Server) entryView(e *entry) modelEntry {
	v := modelEntry{ID: e.id, Object: "model", Status: e.status, Format: e.format, Devices: []int{}, Capabilities: []string{}}
	if e.infoErr != nil {
		v.Error = e.infoErr.Error()
		return v
	}
	i := e.info
	v.Arch, v.Quant, v.SizeBytes = i.Arch, i.Quant, i.SizeBytes
	v.ParamCount, v.ActiveParamCount = i.ParamCount, i.ActiveParamCount
	ctxLen := s.loadContext(i, 0)
	// The context a load gets (or got), not only what the model was
	// trained for: that is what a prompt must fit.
	v.ContextLength = ctxLen
	if e.inst != nil {
		ctxLen = e.inst.nctx
		v.ContextLength = ctxLen
		v.Devices = []int{e.inst.dev.index}
		v.MemEstimateMB = mib(e.inst.est)
		v.InFlight, v.QueueDepth = e.inst.gate.counts()
		v.LoadedAt = e.inst.loadedAt.Unix()
	} else if i.MemEstimate != nil {
		// the pool a load would get on the device with the most free
		// memory last seen
		var free int64
		for _, d := range s.devices {
			free = max(free, d.lastFree.Load())
		}
		kv := max(1, s.cfg.MaxInFlight) * ctxLen
		if free > 0 {
			kv = s.kvPoolTokens(i, ctxLen, free)
		}
		v.MemEstimateMB = mib(i.MemEstimate(ctxLen, kv))
	}
	if i.EmbeddingOnly || e.inst != nil && e.inst.m.EmbeddingOnly {
		// an encoder: embeddings and token counting, no generation
		v.Capabilities = append(v.Capabilities, "embeddings", "tokenize")
		return s.entryStatus(e, v)
	}
	v.Capabilities = append(v.Capabilities, "completion")
	if i.ChatTemplate != "" || e.inst != nil && e.inst.m.Render != nil {
		v.Capabilities = append(v.Capabilities, "chat")
	}
	tc := toolcall.Detect(i.ChatTemplate, nil)
	if e.inst != nil {
		tc = e.inst.tools
	}
	if tc.Tools != 0 {
		v.Capabilities = append(v.Capabilities, "tools")
	}
	if tc.Reasoning {
		v.Capabilities = append(v.Capabilities, "reasoning")
	}
	if e.inst != nil && e.inst.m.CanEmbed {
		// mean-pooled hidden states, where the backend's runner computes them
		v.Capabilities = append(v.Capabilities, "embeddings")
	}
	v.Capabilities = append(v.Capabilities, "tokenize")
	return s.entryStatus(e, v)
}

// entryStatus adds a load error and a failed device to an entry; called
// with s.mu held.
func (s *Server) entryStatus(e *entry, v modelEntry) modelEntry {
	if e.loadErr != nil {
		v.Error = e.loadErr.Error()
	}
	if e.inst != nil {
		if err := e.inst.dev.w.Err(); err != nil {
			// The device failed under the model: it cannot serve.
			v.Status, v.Error = statusFailed, err.Error()
		}
	}
	return v
}

func (s *Server) handleModels(c echo.Context) error {
	s.rescanIfStale(time.Second)
	s.mu.Lock()
	out := make([]modelEntry, 0, len(s.models))
	for _, e := range s.models {
		out = append(out, s.entryView(e))
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return c.JSON(http.StatusOK, map[string]any{"object": "list", "data": out})
}

func (s *Server) modelView(id string) modelEntry {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e := s.models[id]; e != nil {
		return s.entryView(e)
	}
	return modelEntry{ID: id}
}

func (s *Server) handleLoad(c echo.Context) error {
	var req loadRequest
	if err := decodeBody(c, &req); err != nil {
		return writeError(c, err)
	}
	if err := s.load(c.Request().Context(), req); err != nil {
		return writeError(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "loaded", "model": s.modelView(req.Model)})
}

func (s *Server) handleUnload(c echo.Context) error {
	var req struct {
		Model string `json:"model"`
	}
	if err := decodeBody(c, &req); err != nil {
		return writeError(c, err)
	}
	if req.Model == "" {
		return writeError(c, badRequest("model", "model is required"))
	}
	if err := s.unload(c.Request().Context(), req.Model); err != nil {
		return writeError(c, err)
	}
	return c.JSON(http.StatusOK, map[string]any{"status": "unloaded"})
}
