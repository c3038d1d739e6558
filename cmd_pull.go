package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/urfave/cli/v3"

	"helexa/internal/pull"
	"helexa/roles/config"
)

// `helexa pull` downloads a model from the Hugging Face Hub into the
// models folder, or with --node asks that neuron (through the gateway) to
// download it into its own.

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "download a model from the Hugging Face Hub into the models folder",
		ArgsUsage: "OWNER/REPO[:QUANT|/FILE]",
		Description: "OWNER/REPO:QUANT picks the GGUF file of that quantization (Q4_K_M, q8_0, ...;\n" +
			"case-insensitive) with all its shards; OWNER/REPO/FILE names one file; OWNER/REPO\n" +
			"alone fetches a safetensors repository whole (config, tokenizer, every shard) into\n" +
			"a folder of its name, or the repository's only GGUF model.\n" +
			"HF_TOKEN (for gated and private repositories) and HF_ENDPOINT (a mirror) are honoured.\n" +
			"Files are written under a temporary name, resumed after an interruption, checked\n" +
			"against the Hub's SHA-256 and renamed into place once they check out.\n" +
			"With --node NAME the gateway at --url asks that neuron to pull into its own models\n" +
			"folder (POST /nodes/NAME/models/pull), with the neuron's HF_TOKEN and HF_ENDPOINT.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "models-dir", Usage: "where to put the model (default: the first models_dir of --config, else ~/.helexa/models)", Sources: cli.EnvVars("HELEXA_MODELS_DIR")},
			&cli.StringFlag{Name: "revision", Value: "main", Usage: "branch, tag or commit"},
			&cli.StringFlag{Name: "node", Usage: "ask this neuron (a [[neurons]] name of the gateway at --url) to pull into its own folder"},
			&cli.StringFlag{Name: "url", Value: "http://127.0.0.1:31313", Usage: "the gateway's address (with --node)", Sources: cli.EnvVars("HELEXA_URL")},
			&cli.StringFlag{Name: "api-key", Usage: "API key, when the gateway requires one (with --node)", Sources: cli.EnvVars("HELEXA_API_KEY")},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			if c.Args().Len() != 1 {
				return fmt.Errorf("pull wants one model, OWNER/REPO[:QUANT|/FILE]; got %d arguments", c.Args().Len())
			}
			ref, err := pull.ParseRef(c.Args().First())
			if err != nil {
				return err
			}
			prog := newProgress(os.Stderr, isTerminal(os.Stderr))
			if node := c.String("node"); node != "" {
				return pullRemote(ctx, c, node, ref, prog)
			}
			dir := c.String("models-dir")
			if dir == "" {
				dir = config.DefaultModelsDir()
				if p := c.String("config"); p != "" {
					cfg, err := config.Load(p)
					if err != nil {
						return err
					}
					dir = cfg.Neuron.ModelsDirs[0]
				}
			}
			o := pull.Options{Dir: dir, Revision: c.String("revision"), Progress: prog.event}
			o.FromEnv()
			res, err := pull.Pull(ctx, ref, o)
			prog.finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(out(c), "pulled %s: model %q, %d file(s), %s, in %s\n", ref, res.ID, len(res.Files), humanBytes(res.Bytes), res.Path)
			return nil
		},
	}
}

// pullRemote asks the gateway to have node pull ref, and shows the
// neuron's progress lines.
func pullRemote(ctx context.Context, c *cli.Command, node string, ref pull.Ref, prog *progress) error {
	base := strings.TrimRight(c.String("url"), "/")
	body, _ := json.Marshal(map[string]any{"model": ref.String(), "revision": c.String("revision")})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/nodes/"+url.PathEscape(node)+"/models/pull", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("--url %q: %w", base, err)
	}
	req.Header.Set("Content-Type", "application/json")
	if k := c.String("api-key"); k != "" {
		req.Header.Set("Authorization", "Bearer "+k)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("asking the gateway at %s: %w", base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		return fmt.Errorf("pull on node %s: HTTP %d: %s", node, resp.StatusCode, errorMessage(b))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			pull.Event
			Model string   `json:"model"`
			Files []string `json:"files"`
			Bytes int64    `json:"bytes"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return fmt.Errorf("pull on node %s: reading %q: %w", node, sc.Text(), err)
		}
		switch line.Status {
		case "success":
			prog.finish()
			fmt.Fprintf(out(c), "node %s pulled %s: model %q, %d file(s), %s\n", node, ref, line.Model, len(line.Files), humanBytes(line.Bytes))
			return nil
		case "error":
			prog.finish()
			return fmt.Errorf("pull on node %s: %s", node, line.Error)
		}
		prog.event(line.Event)
	}
	prog.finish()
	if err := sc.Err(); err != nil {
		return fmt.Errorf("pull on node %s: the stream broke: %w", node, err)
	}
	return fmt.Errorf("pull on node %s: the stream ended without a result", node)
}

// progress shows pull events: a bar redrawn in place on a terminal, else
// a log line per file step and about every 5 seconds.
type progress struct {
	w        io.Writer
	tty      bool
	drawn    bool
	last     time.Time
	started  time.Time
	startAt  int64
	file     string
	lastLine int
}

func newProgress(w io.Writer, tty bool) *progress { return &progress{w: w, tty: tty} }

func (p *progress) event(e pull.Event) {
	now := time.Now()
	if e.File != p.file {
		p.file, p.started, p.startAt = e.File, now, e.Completed
	}
	prefix := ""
	if e.Count > 1 {
		prefix = fmt.Sprintf("[%d/%d] ", e.Index, e.Count)
	}
	switch e.Status {
	case "downloading":
		if e.Completed == p.startAt && e.Completed > 0 && !p.drawn {
			p.line(fmt.Sprintf("%sresuming %s at %s", prefix, e.File, humanBytes(e.Completed)))
		}
		if p.tty {
			if now.Sub(p.last) < 100*time.Millisecond && e.Completed != e.Total {
				return
			}
			p.last = now
			p.draw(prefix + e.File + "  " + bar(e.Completed, e.Total, 24) + "  " + p.rate(e, now))
			return
		}
		if now.Sub(p.last) < 5*time.Second && e.Completed != p.startAt {
			return
		}
		p.last = now
		p.line(fmt.Sprintf("%sdownloading %s: %s", prefix, e.File, p.rate(e, now)))
	case "done":
		p.line(fmt.Sprintf("%s%s: %s, checksum ok", prefix, e.File, humanBytes(e.Completed)))
	case "exists":
		p.line(fmt.Sprintf("%s%s: already there", prefix, e.File))
	case "retrying":
		p.line(fmt.Sprintf("%s%s: %s; resuming", prefix, e.File, e.Error))
	case "resolving":
		p.line("resolving " + e.File)
	case "verifying":
		if p.tty {
			p.draw(prefix + e.File + "  verifying SHA-256…")
		}
	}
}

func (p *progress) rate(e pull.Event, now time.Time) string {
	s := humanBytes(e.Completed)
	if e.Total > 0 {
		s = fmt.Sprintf("%3d%%  %s / %s", e.Completed*100/e.Total, humanBytes(e.Completed), humanBytes(e.Total))
	}
	if d := now.Sub(p.started).Seconds(); d > 0.5 {
		s += fmt.Sprintf("  %s/s", humanBytes(int64(float64(e.Completed-p.startAt)/d)))
	}
	return s
}

func (p *progress) draw(s string) {
	pad := ""
	if n := p.lastLine - len(s); n > 0 {
		pad = strings.Repeat(" ", n)
	}
	fmt.Fprint(p.w, "\r"+s+pad)
	p.drawn, p.lastLine = true, len(s)
}

func (p *progress) line(s string) {
	if p.drawn {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.lastLine)+"\r")
		p.drawn, p.lastLine = false, 0
	}
	fmt.Fprintln(p.w, s)
}

func (p *progress) finish() {
	if p.drawn {
		fmt.Fprintln(p.w)
		p.drawn = false
	}
}

func bar(done, total int64, width int) string {
	if total <= 0 {
		return "[" + strings.Repeat("?", width) + "]"
	}
	n := int(min(done, total) * int64(width) / total)
	return "[" + strings.Repeat("#", n) + strings.Repeat(".", width-n) + "]"
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// isTerminal tells whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
