package main

import "testing"

// The root keeps the user-facing commands and mounts the tools.
func TestRootCommands(t *testing.T) {
	got := map[string]int{}
	for _, c := range rootCommand().Commands {
		got[c.Name] = len(c.Commands)
	}
	for _, name := range []string{"status", "models", "pull", "version", "tools"} {
		if _, ok := got[name]; !ok {
			t.Errorf("no %q command", name)
		}
	}
	if got["tools"] == 0 {
		t.Error("the tools command has no subcommands")
	}
}
