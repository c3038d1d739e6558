// Package tools holds the `helexa tools …` subcommands: engine and fleet
// tools for people who build, check and measure models (tokenize, eval,
// template, bench, synth, gpucheck). Each lives in its own file; Commands
// lists them.
package tools

import (
	"slices"
	"strings"

	"github.com/urfave/cli/v3"

	"helexa/internal/loadtest"
)

// Command returns the `tools` command with every tool under it.
func Command() *cli.Command {
	return &cli.Command{
		Name:     "tools",
		Usage:    "engine and fleet tools: tokenize, eval, template, bench, synth, gpucheck, loadtest",
		Commands: Commands(),
	}
}

// Commands returns every tool command, sorted by name. This list is the
// one place a tool is added.
func Commands() []*cli.Command {
	cmds := []*cli.Command{
		benchCommand(),
		evalCommand(),
		gpucheckCommand(),
		loadtest.Command(),
		synthCommand(),
		templateCommand(),
		tokenizeCommand(),
	}
	slices.SortFunc(cmds, func(a, b *cli.Command) int { return strings.Compare(a.Name, b.Name) })
	return cmds
}
