// Command helexa runs open-weight LLMs across a fleet of GPU hosts behind
// one OpenAI + Anthropic compatible API. One binary; the role is picked at
// start: gateway, neuron, or all (both in one process).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v3"

	"helexa/internal/tools"
	"helexa/roles"
)

// Stamped by the Makefile with -ldflags.
var (
	version = "dev"
	commit  = "none"
)

func main() {
	roles.Version, roles.Commit = version, commit
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := rootCommand().Run(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "helexa:", err)
		os.Exit(1)
	}
}

func rootCommand() *cli.Command {
	return &cli.Command{
		Name:  "helexa",
		Usage: "run open-weight LLMs across your GPU hosts behind one OpenAI + Anthropic API",
		Description: "With no subcommand helexa serves, in the role given by --role:\n" +
			"  gateway  the fleet's front door: OpenAI + Anthropic API, routing, load/evict, metrics\n" +
			"  neuron   one per GPU host: discovers devices, loads models, runs inference in-process\n" +
			"  all      both in one process, for a single box (the default)",
		Version: version,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "path of helexa.toml (defaults apply when omitted)", Sources: cli.EnvVars("HELEXA_CONFIG")},
			&cli.StringFlag{Name: "role", Value: "all", Usage: "gateway, neuron or all", Sources: cli.EnvVars("HELEXA_ROLE"),
				Validator: func(s string) error {
					switch s {
					case "gateway", "neuron", "all":
						return nil
					}
					return fmt.Errorf("--role must be gateway, neuron or all, got %q", s)
				}},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "trace, debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "console", Usage: "json or console"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			log, err := roles.NewLogger(c.String("log-level"), c.String("log-format"), os.Stderr)
			if err != nil {
				return err
			}
			return roles.Run(ctx, roles.Options{Role: c.String("role"), ConfigPath: c.String("config"), Log: log})
		},
		Commands: []*cli.Command{
			statusCommand(),
			modelsCommand(),
			pullCommand(),
			versionCommand(),
			tools.Command(),
		},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(ctx context.Context, c *cli.Command) error {
			fmt.Printf("helexa %s (commit %s)\n", version, commit)
			return nil
		},
	}
}
