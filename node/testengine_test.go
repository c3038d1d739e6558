package node

import (
	"context"
	"fmt"
	"hash/fnv"
	"helexa/internal/testshared"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"helexa/node/device"
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
	size := fi.Size()
	return modelInfo{Format: "gguf", Arch: f.Arch(), Quant: "F32", SizeBytes: size, ContextLength: int(ctx),
		ChatTemplate: testTemplate,
		MemEstimate:  func(c, slots int) int64 { return size + int64(c*slots)*1024 }}, nil
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
	var mu sync.Mutex
	seqs := make([][]int32, o.Slots)
	var script []int32
	if e.script != "" {
		script = tok.Encode(e.script, false, false)
	}
	m := &loadedModel{NCtx: o.ContextLength, NVocab: nv, Slots: o.Slots, Close: func() error { return nil }}
	m.Forward = func(slot int, tokens []int32, pos int, logits []float32) error {
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
		mu.Lock()
		defer mu.Unlock()
		if slot < 0 || slot >= len(seqs) || pos < 0 || pos > len(seqs[slot]) || pos+len(tokens) > o.ContextLength {
			return fmt.Errorf("bad forward: slot %d pos %d n %d (have %d)", slot, pos, len(tokens), len(seqs[slot]))
		}
		seqs[slot] = append(seqs[slot][:pos], tokens...)
		e.computed.Add(int64(len(tokens)))
		next := e.next(seqs[slot], script, tok.EOS(), nv)
		for i := range logits {
			logits[i] = -float32((i-int(next))*(i-int(next))) / 64
		}
		return nil
	}
	if err := vocabTemplate(m, tok, testTemplate); err != nil {
		return nil, err
	}
	return m, nil
}

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
