package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v3"

	"helexa/gateway"
)

// `helexa status` and `helexa models` ask a running gateway and print what
// it knows as tables.

func gatewayFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "url", Value: "http://127.0.0.1:31313", Usage: "the gateway's address", Sources: cli.EnvVars("HELEXA_URL")},
		&cli.StringFlag{Name: "api-key", Usage: "API key, when the gateway requires one", Sources: cli.EnvVars("HELEXA_API_KEY")},
		&cli.BoolFlag{Name: "json", Usage: "print the gateway's JSON answer instead of a table"},
	}
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show the fleet: every node's state, devices, memory and models",
		Flags: append(gatewayFlags(),
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "redraw the table every --interval until interrupted, like top (repeated tables when not on a terminal)"},
			&cli.DurationFlag{Name: "interval", Aliases: []string{"n"}, Value: 2 * time.Second, Usage: "time between redraws with --watch"},
		),
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Bool("watch") {
				if c.Bool("json") {
					return fmt.Errorf("--watch draws tables; it does not go with --json")
				}
				if c.Duration("interval") < 100*time.Millisecond {
					return fmt.Errorf("--interval must be at least 100ms, got %s", c.Duration("interval"))
				}
				tty := false
				if f, ok := out(c).(*os.File); ok {
					tty = isTerminal(f)
				}
				fetch := func(ctx context.Context) ([]byte, error) { return gatewayGet(ctx, c, "/fleet") }
				return watchFleet(ctx, out(c), fetch, c.Duration("interval"), tty, c.String("url"), 0)
			}
			body, err := gatewayGet(ctx, c, "/fleet")
			if err != nil {
				return err
			}
			if c.Bool("json") {
				_, err = out(c).Write(body)
				return err
			}
			var rep gateway.FleetReport
			if err := json.Unmarshal(body, &rep); err != nil {
				return fmt.Errorf("reading /fleet: %w", err)
			}
			return renderFleet(out(c), rep)
		},
	}
}

func modelsCommand() *cli.Command {
	return &cli.Command{
		Name:  "models",
		Usage: "list the models the fleet can serve, loaded or not",
		Flags: gatewayFlags(),
		Action: func(ctx context.Context, c *cli.Command) error {
			body, err := gatewayGet(ctx, c, "/v1/models")
			if err != nil {
				return err
			}
			if c.Bool("json") {
				_, err = out(c).Write(body)
				return err
			}
			var list gateway.ModelList
			if err := json.Unmarshal(body, &list); err != nil {
				return fmt.Errorf("reading /v1/models: %w", err)
			}
			return renderModels(out(c), list)
		},
	}
}

// out is where a command prints: the root command's Writer, else stdout.
func out(c *cli.Command) io.Writer {
	if w := c.Root().Writer; w != nil {
		return w
	}
	return os.Stdout
}

// gatewayGet fetches path from the gateway named by --url.
func gatewayGet(ctx context.Context, c *cli.Command, path string) ([]byte, error) {
	base := strings.TrimRight(c.String("url"), "/")
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("--url %q: %w", base, err)
	}
	if k := c.String("api-key"); k != "" {
		req.Header.Set("Authorization", "Bearer "+k)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("asking the gateway at %s: %w", base, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("reading %s%s: %w", base, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		msg := errorMessage(body)
		if resp.StatusCode == http.StatusUnauthorized {
			msg += " (pass --api-key or set HELEXA_API_KEY)"
		}
		return nil, fmt.Errorf("%s%s answered %d: %s", base, path, resp.StatusCode, msg)
	}
	return body, nil
}

// watchFleet draws the fleet every interval until ctx ends (or frames
// have been drawn, when frames > 0). On a terminal each frame clears the
// screen first, like top; otherwise the frames follow one another, each
// under a time stamp. A failed fetch is shown in its frame and retried.
func watchFleet(ctx context.Context, w io.Writer, fetch func(context.Context) ([]byte, error), interval time.Duration, tty bool, url string, frames int) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for n := 1; ; n++ {
		var frame bytes.Buffer
		now := time.Now().Format("15:04:05")
		if tty {
			frame.WriteString("\x1b[H\x1b[2J") // home, clear
			fmt.Fprintf(&frame, "helexa status — %s — every %s — Ctrl-C to quit\n\n", url, interval)
		} else {
			fmt.Fprintf(&frame, "== %s %s\n", now, url)
		}
		body, err := fetch(ctx)
		if err == nil {
			var rep gateway.FleetReport
			if err = json.Unmarshal(body, &rep); err == nil {
				err = renderFleet(&frame, rep)
			} else {
				err = fmt.Errorf("reading /fleet: %w", err)
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			fmt.Fprintf(&frame, "error: %v\n", err)
		}
		if tty {
			fmt.Fprintf(&frame, "\n%s", now)
		} else {
			frame.WriteString("\n")
		}
		if _, err := w.Write(frame.Bytes()); err != nil {
			return err
		}
		if frames > 0 && n >= frames {
			return nil
		}
		select {
		case <-ctx.Done():
			if tty {
				fmt.Fprintln(w)
			}
			return nil
		case <-t.C:
		}
	}
}

// renderFleet writes one block per node: a summary line, its devices and
// its models.
func renderFleet(w io.Writer, rep gateway.FleetReport) error {
	if len(rep.Nodes) == 0 {
		_, err := fmt.Fprintln(w, "no nodes configured")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tSTATE\tHOST\tDEVICES\tMEM USED\tMEM FREE\tLOADED\tENDPOINT")
	for _, n := range rep.Nodes {
		state := n.State
		if n.LastError != "" && !n.Healthy {
			state += " (" + shorten(n.LastError, 60) + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%d/%d\t%s\n", n.Name, state, orDash(n.Hostname), len(n.Devices),
			mb(n.MemUsedMB), mb(n.MemFreeMB), n.ModelsReady, len(n.Models), n.Endpoint)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range rep.Nodes {
		if len(n.Devices) == 0 && len(n.Models) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s\n", n.Name)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		if len(n.Devices) > 0 {
			fmt.Fprintln(tw, "  DEVICE\tKIND\tNAME\tTOTAL\tUSED\tFREE")
			for _, d := range n.Devices {
				fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\t%s\n", d.Index, d.Kind, orDash(d.Name), mb(d.MemTotalMB), mb(d.MemUsedMB), mb(d.MemFreeMB))
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		}
		if len(n.Models) > 0 {
			fmt.Fprintln(tw, "  MODEL\tSTATUS\tMEM\tCONTEXT\tIN FLIGHT\tQUEUED\tLAST USED")
			models := append([]gateway.FleetModel(nil), n.Models...)
			sort.Slice(models, func(i, j int) bool { return models[i].ID < models[j].ID })
			for _, m := range models {
				status := m.Status
				if m.Pinned {
					status += " (pinned)"
				}
				if m.Error != "" {
					status += ": " + shorten(m.Error, 50)
				}
				last := "-"
				if m.LastUsed != nil {
					last = time.Since(*m.LastUsed).Round(time.Second).String() + " ago"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%d\t%d\t%s\n", m.ID, status, mb(m.MemEstimateMB), orDash(count(m.ContextLength)), m.InFlight, m.QueueDepth, last)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

// renderModels writes the merged model list as a table.
func renderModels(w io.Writer, list gateway.ModelList) error {
	if len(list.Data) == 0 {
		_, err := fmt.Fprintln(w, "no models: no healthy node lists any, and the catalogue is empty")
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "MODEL\tLOADED\tARCH\tPARAMS\tQUANT\tCONTEXT\tCAPABILITIES\tLOCATIONS")
	for _, m := range list.Data {
		id := m.ID
		if m.AliasOf != "" {
			id += " → " + m.AliasOf
		}
		loaded := "no"
		if m.Loaded {
			loaded = "yes"
		}
		var locs []string
		for _, l := range m.Locations {
			locs = append(locs, l.Node+":"+l.Status)
		}
		where := strings.Join(locs, ", ")
		if where == "" {
			where = "-"
			if m.InCatalogue {
				where = "catalogue only"
			}
		}
		params := humanCount(m.ParamCount)
		if m.ActiveParamCount > 0 && m.ActiveParamCount < m.ParamCount {
			params += " (" + humanCount(m.ActiveParamCount) + " active)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", id, loaded, orDash(m.Arch), orDash(params), orDash(m.Quant),
			orDash(count(m.ContextLength)), orDash(strings.Join(m.Capabilities, ",")), where)
	}
	return tw.Flush()
}

func mb(v int) string {
	switch {
	case v <= 0:
		return "-"
	case v >= 10240:
		return fmt.Sprintf("%.1f GB", float64(v)/1024)
	default:
		return fmt.Sprintf("%d MB", v)
	}
}

func count(v int) string {
	if v <= 0 {
		return ""
	}
	return fmt.Sprint(v)
}

// humanCount writes a parameter count as 437K, 25M, 1.5B ("" for none).
func humanCount(n int64) string {
	switch {
	case n <= 0:
		return ""
	case n >= 1e9:
		return strings.TrimSuffix(fmt.Sprintf("%.1f", float64(n)/1e9), ".0") + "B"
	case n >= 1e6:
		return fmt.Sprintf("%.0fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0fK", float64(n)/1e3)
	}
	return fmt.Sprint(n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}

// errorMessage is the message of an API error body: the envelope's
// error.message where it has one, else the body's text.
func errorMessage(body []byte) string {
	var env struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error.Message != "" {
		return env.Error.Message
	}
	return strings.TrimSpace(string(body))
}
