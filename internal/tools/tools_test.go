package tools

import (
	"slices"
	"testing"
)

// Every tool is listed once, by name order, under the tools command.
func TestCommandsListed(t *testing.T) {
	var names []string
	for _, c := range Command().Commands {
		names = append(names, c.Name)
	}
	want := []string{"bench", "eval", "gpucheck", "loadtest", "synth", "template", "tokenize"}
	if !slices.Equal(names, want) {
		t.Errorf("tools %v, want %v", names, want)
	}
}
