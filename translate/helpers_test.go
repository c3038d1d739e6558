package translate

import (
	"encoding/json"
	"errors"
	"helexa/internal/testshared"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// canon decodes JSON for comparison and re-encodes it indented.
func canon(t *testing.T, b []byte) (any, string) {
	t.Helper()
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("invalid JSON %q: %v", b, err)
	}
	out, _ := json.MarshalIndent(v, "", "  ")
	return v, string(out)
}

// jsonEq fails the test when got and want are not the same JSON value.
func jsonEq(t *testing.T, got []byte, want string) {
	t.Helper()
	g, gs := canon(t, got)
	w, ws := canon(t, []byte(want))
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("JSON mismatch\n got: %s\nwant: %s", gs, ws)
	}
}

// wantError checks that err is an *Error with status and param.
func wantError(t *testing.T, err error, status int, param string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *Error", err, err)
	}
	if e.Status != status || e.Param != param || e.Message == "" {
		t.Fatalf("error = %+v, want status %d param %q and a message", e, status, param)
	}
	return e
}

// sharedPath returns path under the shared data folder beside the module
// root, skipping the test when it is absent.
func sharedPath(t testing.TB, rel string) string {
	t.Helper()
	dir := testshared.ModuleRoot(t)
	p := filepath.Join(dir, "..", "shared", rel)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared test data %s is absent (%v); skipping", rel, err)
	}
	return p
}

// clientBody reads the body of a captured client request from shared data.
func clientBody(t testing.TB, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile(sharedPath(t, filepath.Join("clients", name)))
	if err != nil {
		t.Fatal(err)
	}
	var capture struct {
		Body json.RawMessage `json:"body"`
	}
	if err := json.Unmarshal(raw, &capture); err != nil {
		t.Fatalf("decoding capture %s: %v", name, err)
	}
	return capture.Body
}
