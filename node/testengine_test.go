package node

import (
	"context"
	"fmt"
	"hash/fnv"
	"helexa/internal/testshared"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"helexa/node/device"
	"helexa/node/engine"
	"helexa/node/gguf"
	"helexa/node/tokenizer"
)

// sharedDir finds ../shared beside the repository root, or skips.
func sharedDir(t testing.TB) string {
	t.Helper()
	dir := testshared.ModuleRoot(t)
	s := filepath.Join(dir, "..", "shared")
	if _, err := os.Stat(filepath.Join(s, "models")); err != nil {
		t.Skipf("shared test data not found at %s (needed for model tests)", s)
	}
	return s
}

// testTemplate is a small Hermes-style chat template: it mentions
// <tool_call>, so tool-call parsing is on for models using it.
const testTemplate = `{%- for m in messages -%}<|{{ m['role'] }}|>{{ m['content'] }}
{% endfor -%}{%- if tools %}<tools>{{ tools | length }}</tools> use <tool_call>{}</tool_call>
{% endif -%}{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}`

// synthEngine is an engine double for testing the HTTP layer before and
// beside the real engine: the real GGUF reader and tokenizer, with a
// forward pass that is a deterministic function of the slot's whole
// sequence (so two requests mixing up their KV slots change their
// outputs), optionally following a script, and counting the tokens it
// computes.
type synthEngine struct {
	script   string        // when set, the model writes this text, then EOS
	delay    time.Duration // per forward call
	loads    atomic.Int32
	computed atomic.Int64 // tokens forwarded
	active   atomic.Int32 // forward calls running now (must stay ≤ 1)
	maxSeen  atomic.Int32
	poison   atomic.Bool // the next forward fails the device
	trained  int         // when set, the trained context Inspect reports
	embeds   bool        // the runner computes embeddings (embedSynthRunner)
}

func (e *synthEngine) hooks() engineHooks {
	return engineHooks{Inspect: e.inspect, Load: e.load}
}

func (e *synthEngine) inspect(path string) (modelInfo, error) {
	f, err := gguf.Open(path)
	if err != nil {
		return modelInfo{}, err
	}
	defer f.Close()
	fi, err := os.Stat(path)
	if err != nil {
		return modelInfo{}, err
	}
	ctx, _ := f.Uint(f.Arch() + ".context_length")
	if e.trained > 0 {
		ctx = uint64(e.trained)
	}
	size := fi.Size()
	return modelInfo{Format: "gguf", Arch: f.Arch(), Quant: "F32", SizeBytes: size, ContextLength: int(ctx),
		ChatTemplate: testTemplate,
		MemEstimate:  func(c, kvTokens int) int64 { return size + int64(kvTokens)*1024 }, KVBytesPerToken: 1024}, nil
}

func (e *synthEngine) load(ctx context.Context, path string, o loadOptions) (*loadedModel, error) {
	e.loads.Add(1)
	time.Sleep(20 * time.Millisecond) // long enough for concurrent loads to meet
	f, err := gguf.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tok, err := tokenizer.FromGGUF(f)
	if err != nil {
		return nil, err
	}
	nv := tok.VocabSize()
	var script []int32
	if e.script != "" {
		script = tok.Encode(e.script, false, false)
	}
	// A small block size, so sequences span several blocks and prefix
	// sharing is exercised.
	const bs = 16
	blocks := max(1, (o.KVTokens+bs-1)/bs)
	r := &synthRunner{e: e, bs: bs, kv: make([][]int32, blocks), script: script, eos: tok.EOS(), nv: nv}
	var runner engine.Runner = r
	if e.embeds {
		runner = &embedSynthRunner{r}
	}
	m := &loadedModel{NCtx: o.ContextLength, NVocab: nv, Engine: engine.NewModel(runner, nv, o.ContextLength, blocks, bs, o.MaxCached)}
	if e.embeds {
		m.Engine.Weights().H.NEmbd = 8 // embedSynthRunner's width
	}
	if err := vocabTemplate(m, tok, testTemplate); err != nil {
		return nil, err
	}
	return m, nil
}

// synthRunner is the engine double's runner: the KV cache holds the
// tokens themselves, block by block, and a token's logits are a function
// of the whole sequence read back through the item's block table, so a
// wrong table, a block written by two sequences or a bad prefix copy
// changes the output.
type synthRunner struct {
	e      *synthEngine
	bs     int
	kv     [][]int32 // per block, the tokens at its positions
	script []int32
	eos    int32
	nv     int
}

func (r *synthRunner) ForwardBatch(items []engine.Item) error {
	e := r.e
	n := e.active.Add(1)
	defer e.active.Add(-1)
	if n > e.maxSeen.Load() {
		e.maxSeen.Store(n)
	}
	if e.delay > 0 {
		time.Sleep(e.delay)
	}
	if e.poison.Load() {
		return fmt.Errorf("synthetic device fault: %w", device.ErrPoisoned)
	}
	for _, it := range items {
		for i, t := range it.Tokens {
			p := it.Pos + i
			b := it.Blocks[p/r.bs]
			if r.kv[b] == nil {
				r.kv[b] = make([]int32, r.bs)
			}
			r.kv[b][p%r.bs] = t
		}
		e.computed.Add(int64(len(it.Tokens)))
		if it.Logits == nil {
			continue
		}
		end := it.Pos + len(it.Tokens)
		seq := make([]int32, end)
		for p := range seq {
			seq[p] = r.kv[it.Blocks[p/r.bs]][p%r.bs]
		}
		rows := 1
		if it.All {
			rows = len(it.Tokens)
		}
		for k := range rows {
			next := e.next(seq[:end-rows+1+k], r.script, r.eos, r.nv)
			out := it.Logits[k*r.nv : (k+1)*r.nv]
			for i := range out {
				out[i] = -float32((i-int(next))*(i-int(next))) / 64
			}
		}
	}
	return nil
}

func (r *synthRunner) CopyKV(dst, src int32, n int) error {
	if r.kv[dst] == nil {
		r.kv[dst] = make([]int32, r.bs)
	}
	copy(r.kv[dst][:n], r.kv[src][:n])
	return nil
}

func (r *synthRunner) MemBytes() int64 { return 0 }

func (r *synthRunner) Close() error { return nil }

// next picks the token that follows seq.
func (e *synthEngine) next(seq, script []int32, eos int32, nv int) int32 {
	if script != nil {
		// the longest k with seq ending in script[:k]
		for k := min(len(script), len(seq)); k > 0; k-- {
			if equal(seq[len(seq)-k:], script[:k]) {
				if k == len(script) {
					return eos
				}
				return script[k]
			}
		}
		return script[0]
	}
	h := fnv.New64a()
	for _, t := range seq {
		h.Write([]byte{byte(t), byte(t >> 8), byte(t >> 16)})
	}
	return int32(3 + h.Sum64()%uint64(nv-3))
}

func equal(a, b []int32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
