package main

import (
	"context"
	"errors"

	"github.com/urfave/cli/v3"
)

// placeholder: the gateway work replaces this file.
func statusCommand() *cli.Command {
	return &cli.Command{Name: "status", Usage: "show the fleet", Action: func(context.Context, *cli.Command) error { return errors.New("not built yet") }}
}

func modelsCommand() *cli.Command {
	return &cli.Command{Name: "models", Usage: "list models", Action: func(context.Context, *cli.Command) error { return errors.New("not built yet") }}
}
