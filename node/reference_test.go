package node

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rs/zerolog"
)

type referenceFile struct {
	ModelFile string `json:"model_file"`
	Cases     []struct {
		Prompt           string  `json:"prompt"`
		PromptTokens     []int32 `json:"prompt_tokens"`
		CompletionTokens []int32 `json:"completion_tokens"`
		TopLogprobs      [][]struct {
			ID      int32   `json:"id"`
			Logprob float64 `json:"logprob"`
		} `json:"top_logprobs"`
	} `json:"cases"`
}

// tieTolerance is the top-1/top-2 gap under which a reference step may
// go either way (shared/README.md's tolerances).
func tieTolerance(model string) float64 {
	switch {
	case strings.Contains(model, "-Q"):
		return 0.5
	case strings.Contains(model, "F16"):
		return 0.1
	}
	return 0.05
}

// streamCompletion sends a streaming greedy completion of prompt ids and
// returns the generated token ids.
func streamCompletion(t *testing.T, url, model string, prompt []int32, n int) []int32 {
	t.Helper()
	ids, err := streamCompletionErr(url, model, prompt, n)
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func streamCompletionErr(url, model string, prompt []int32, n int) ([]int32, error) {
	body, _ := json.Marshal(map[string]any{"model": model, "prompt": prompt, "max_tokens": n, "temperature": 0, "stream": true, "logprobs": 1})
	resp, err := http.Post(url+"/v1/completions", "application/json", strings.NewReader(string(body)))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		data, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("completion: %d %s", resp.StatusCode, data)
	}
	var ids []int32
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimPrefix(sc.Text(), "data: ")
		if line == sc.Text() || line == "" {
			continue
		}
		if line == "[DONE]" {
			return ids, nil
		}
		var c completionResponse
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			return nil, fmt.Errorf("bad chunk %q: %v", line, err)
		}
		if len(c.Choices) > 0 && c.Choices[0].Logprobs != nil {
			ids = append(ids, c.Choices[0].Logprobs.TokenIDs...)
		}
	}
	return nil, fmt.Errorf("stream ended without [DONE] (%v)", sc.Err())
}

// TestReferenceContinuations serves ../shared/models and checks that
// greedy streaming completions of the reference prompts give the
// reference tokens, up to the first near-tie.
func TestReferenceContinuations(t *testing.T) {
	shared := sharedDir(t)
	// (The qwen3moe references reach a near-tie within a few tokens of
	// most prompts, too soon for this check; the engine's teacher-forced
	// TestReferences covers them.)
	models := []string{"stories260K", "stories260K-F16", "synth-25m-Q4_K_M", "synth-hf-llama3", "synth-gemma3-F32"}
	if testing.Short() || raceEnabled {
		models = []string{"stories260K"}
	}
	cfg := testConfig(filepath.Join(shared, "models"))
	cfg.MaxInFlight, cfg.MaxQueueDepth = 3, 8
	s, err := newServer(cfg, zerolog.New(io.Discard), realEngine())
	if err != nil {
		t.Fatal(err)
	}
	n := &testNeuron{s: s, dir: cfg.ModelsDirs[0]}
	n.srv = newHTTPTest(t, s)
	for _, model := range models {
		t.Run(model, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(shared, "reference", model+".json"))
			if errors.Is(err, fs.ErrNotExist) {
				// the architectures added later keep their references apart
				data, err = os.ReadFile(filepath.Join(shared, "reference-next", model+".json"))
			}
			if err != nil {
				t.Skipf("no reference: %v", err)
			}
			var ref referenceFile
			if err := json.Unmarshal(data, &ref); err != nil {
				t.Fatal(err)
			}
			n.load(t, model, 512)
			tol := tieTolerance(model)
			compared := 0
			for ci, c := range ref.Cases {
				got := streamCompletion(t, n.srv.URL, model, c.PromptTokens, len(c.CompletionTokens))
				for j, want := range c.CompletionTokens {
					if j >= len(got) {
						t.Fatalf("case %d (%q): %d tokens, want %d", ci, c.Prompt, len(got), len(c.CompletionTokens))
					}
					if tl := c.TopLogprobs[j]; len(tl) > 1 && tl[0].Logprob-tl[1].Logprob < tol {
						break // a near-tie: either way is right, and the rest may differ
					}
					if got[j] != want {
						t.Fatalf("case %d (%q) step %d: token %d, want %d\ngot  %v\nwant %v", ci, c.Prompt, j, got[j], want, got, c.CompletionTokens)
					}
					compared++
				}
			}
			// all cases at once, each in its own KV slot, give the same tokens
			if model == "stories260K" {
				n.s.mu.Lock()
				slots := n.s.cfg.MaxInFlight
				n.s.mu.Unlock()
				want := make([][]int32, len(ref.Cases))
				for ci, c := range ref.Cases {
					want[ci] = streamCompletion(t, n.srv.URL, model, c.PromptTokens, len(c.CompletionTokens))
				}
				var wg sync.WaitGroup
				for ci, c := range ref.Cases {
					wg.Add(1)
					go func() {
						defer wg.Done()
						got, err := streamCompletionErr(n.srv.URL, model, c.PromptTokens, len(c.CompletionTokens))
						if err != nil {
							t.Error(err)
						} else if !equal(got, want[ci]) {
							t.Errorf("case %d run concurrently (%d in flight): %v, alone %v", ci, slots, got, want[ci])
						}
					}()
				}
				wg.Wait()
			}
			if compared < len(ref.Cases)*8 {
				t.Fatalf("only %d tokens compared", compared)
			}
			t.Logf("%s: %d reference tokens matched", model, compared)
			if st := n.do(t, "POST", "/models/unload", map[string]any{"model": model}, nil); st != 200 {
				t.Fatalf("unload: %d", st)
			}
		})
	}
}
