// Package pulltest serves a minimal Hugging Face Hub for tests of the
// code that pulls models: one repository holding one GGUF file.
package pulltest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"
)

// OneFileHub serves repository repo with a single file, name, holding
// data: its tree listing (with the LFS SHA-256) and the file itself with
// X-Linked-Etag and Range support. Anything else is a 404 with the Hub's
// JSON error body. Close the server when done.
func OneFileHub(repo, name string, data []byte) *httptest.Server {
	sum := sha256.Sum256(data)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/models/" + repo + "/tree/main":
			fmt.Fprintf(w, `[{"type":"file","path":%q,"size":%d,"lfs":{"oid":"%x","size":%d}}]`, name, len(data), sum, len(data))
		case "/" + repo + "/resolve/main/" + name:
			w.Header().Set("X-Linked-Etag", `"`+hex.EncodeToString(sum[:])+`"`)
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
		default:
			http.Error(w, `{"error":"Repository not found"}`, http.StatusNotFound)
		}
	}))
}
