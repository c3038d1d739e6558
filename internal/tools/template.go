package tools

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v3"

	"helexa/node/chattmpl"
)

func templateCommand() *cli.Command {
	return &cli.Command{
		Name:  "template",
		Usage: "render chat-template test cases",
		Description: "Reads a JSON array of cases, each {\"name\", \"template\", \"context\"}, renders each\n" +
			"template with its context, and prints one JSON line per case: {\"name\", \"output\"} or\n" +
			"{\"name\", \"error\"} when parsing or rendering fails. Other fields of a case are ignored.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "cases", Required: true, Usage: "JSON file of cases"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			return templateCases(os.Stdout, c.String("cases"))
		},
	}
}

type templateToolCase struct {
	Name     string          `json:"name"`
	Template string          `json:"template"`
	Context  json.RawMessage `json:"context"`
}

type templateToolResult struct {
	Name   string  `json:"name"`
	Output *string `json:"output,omitempty"`
	Error  string  `json:"error,omitempty"`
}

// templateCases renders every case of path and writes JSON Lines to out.
// A case that fails is reported on its line; only an unreadable file or a
// write error fails the command.
func templateCases(out io.Writer, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("template: reading cases: %w", err)
	}
	var cases []templateToolCase
	if err := json.Unmarshal(data, &cases); err != nil {
		return fmt.Errorf("template: decoding %s: %w", path, err)
	}
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	for _, c := range cases {
		res := templateToolResult{Name: c.Name}
		ctx := c.Context
		if len(ctx) == 0 {
			ctx = json.RawMessage(`{}`)
		}
		t, err := chattmpl.Parse(c.Template)
		if err == nil {
			var s string
			if s, err = chattmpl.RenderContext(t, ctx); err == nil {
				res.Output = &s
			}
		}
		if err != nil {
			res.Error = err.Error()
		}
		if err := enc.Encode(res); err != nil {
			return fmt.Errorf("template: writing result: %w", err)
		}
	}
	return nil
}
