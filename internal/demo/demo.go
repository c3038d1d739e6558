// Package demo holds the demo model built into the binary, and the
// byte-level vocabulary the synthetic stand-in for it is made with.
//
// The model file itself is not part of the source tree: `make build`
// writes data/demo.gguf before compiling (see data/README.md). A binary
// built without it reports that it has none.
package demo

import (
	"bytes"
	"embed"
	"io/fs"
)

// ID is the model id the demo model is served under: its file in the
// models folder is ID + ".gguf".
const ID = "demo"

// FileName is the name of the embedded file and of the file written into
// the models folder.
const FileName = ID + ".gguf"

//go:embed data
var data embed.FS

// Model returns the embedded demo model's bytes, or ok false when the
// binary was built without one.
func Model() (b []byte, ok bool) {
	b, err := fs.ReadFile(data, "data/"+FileName)
	if err != nil || !bytes.HasPrefix(b, []byte("GGUF")) {
		return nil, false
	}
	return b, true
}
