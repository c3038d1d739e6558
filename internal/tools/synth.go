package tools

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"

	"github.com/urfave/cli/v3"

	"helexa/internal/demo"
	"helexa/node/engine"
	"helexa/node/ggml"
	"helexa/node/gguf"
)

func synthCommand() *cli.Command {
	return &cli.Command{
		Name:  "synth",
		Usage: "write a GGUF model of any shape with seeded random weights (for tests and benchmarks)",
		Description: "Writes a llama-architecture GGUF whose weights are seeded random numbers, with the\n" +
			"tokenizer copied from --vocab-from (any GGUF holding tokenizer.* metadata). --arch bert\n" +
			"writes a BERT encoder (an embedding model: --ffn is its hidden size, --ctx its positions,\n" +
			"--pooling mean, cls or last) with a small built-in WordPiece vocabulary unless\n" +
			"--vocab-from gives one. --type is\n" +
			"F32, F16, Q8_0, Q4_0, Q4_K, Q6_K or Q4_K_M (Q4_K with Q6_K for the output and for\n" +
			"attn_v/ffn_down of some layers, as llama.cpp's Q4_K_M mix does). Norm weights are\n" +
			"always F32. Tensor data are streamed to disk, so models larger than memory work.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "arch", Value: "llama", Usage: "architecture (llama, bert)"},
			&cli.IntFlag{Name: "dim", Required: true, Usage: "model width (embedding length)"},
			&cli.IntFlag{Name: "layers", Required: true, Usage: "number of transformer blocks"},
			&cli.IntFlag{Name: "heads", Required: true, Usage: "attention heads"},
			&cli.IntFlag{Name: "kv-heads", Usage: "key/value heads (default: --heads)"},
			&cli.IntFlag{Name: "ffn", Required: true, Usage: "feed-forward hidden size"},
			&cli.StringFlag{Name: "vocab-from", Usage: "GGUF file whose tokenizer metadata is copied (default: a built-in byte-level vocabulary; for --arch bert a built-in WordPiece one)"},
			&cli.StringFlag{Name: "pooling", Value: "mean", Usage: "--arch bert: pooling of the embeddings (mean, cls, last)"},
			&cli.StringFlag{Name: "type", Value: "F32", Usage: "weight type: F32, F16, Q8_0, Q4_0, Q4_K, Q6_K, Q4_K_M"},
			&cli.StringFlag{Name: "out", Required: true, Usage: "output .gguf path"},
			&cli.Uint64Flag{Name: "seed", Value: 1, Usage: "random seed"},
			&cli.IntFlag{Name: "ctx", Value: 2048, Usage: "context length recorded in the file"},
			&cli.StringFlag{Name: "name", Value: "synth", Usage: "general.name"},
			&cli.FloatFlag{Name: "rope-theta", Value: 10000, Usage: "RoPE base frequency"},
			&cli.FloatFlag{Name: "norm-eps", Value: 1e-5, Usage: "RMSNorm epsilon (LayerNorm's for --arch bert, default 1e-12 there)"},
		},
		Action: func(ctx context.Context, c *cli.Command) error {
			spec := synthSpec{
				Arch: c.String("arch"), Dim: int(c.Int("dim")), Layers: int(c.Int("layers")),
				Heads: int(c.Int("heads")), KVHeads: int(c.Int("kv-heads")), FFN: int(c.Int("ffn")),
				Type: c.String("type"), Seed: c.Uint64("seed"), Ctx: int(c.Int("ctx")), Name: c.String("name"),
				RopeTheta: float32(c.Float("rope-theta")), NormEps: float32(c.Float("norm-eps")),
				Pooling: c.String("pooling"),
			}
			if spec.Arch == "bert" && !c.IsSet("norm-eps") {
				spec.NormEps = 1e-12
			}
			var vocab []gguf.KV
			if spec.Arch != "bert" {
				vocab = demo.ByteVocab()
			}
			if p := c.String("vocab-from"); p != "" {
				f, err := gguf.Open(p)
				if err != nil {
					return fmt.Errorf("synth: %w", err)
				}
				vocab = tokenizerKVs(f)
				f.Close()
			}
			st, err := writeSynth(ctx, spec, vocab, c.String("out"))
			if err != nil {
				return err
			}
			fmt.Fprintf(os.Stdout, "wrote %s: %s %s, %d tensors, %d parameters, %d bytes\n",
				c.String("out"), spec.Arch, strings.ToUpper(spec.Type), st.tensors, st.params, st.bytes)
			return nil
		},
	}
}

// synthSpec is the shape and numeric settings of a synthetic model.
type synthSpec struct {
	Arch                        string
	Dim, Layers, Heads, KVHeads int
	FFN, Ctx                    int
	Type, Name                  string
	Seed                        uint64
	RopeTheta, NormEps          float32
	Pooling                     string // bert: mean, cls or last
}

// bertPooling numbers --pooling as GGUF's bert.pooling_type.
var bertPooling = map[string]uint32{"mean": 1, "cls": 2, "last": 3}

// llama.cpp's llama_ftype values for general.file_type.
var synthFileTypes = map[string]uint32{"F32": 0, "F16": 1, "Q4_0": 2, "Q8_0": 7, "Q4_K": 15, "Q4_K_M": 15, "Q6_K": 18}

// tokenizerKVs returns f's tokenizer.* metadata.
func tokenizerKVs(f *gguf.File) []gguf.KV {
	var out []gguf.KV
	for _, kv := range f.KVs() {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			out = append(out, kv)
		}
	}
	return out
}

// vocab may be nil for bert (the built-in WordPiece vocabulary).
func (s *synthSpec) validate(vocab []gguf.KV) (nVocab int, err error) {
	switch s.Arch {
	case "llama":
		if vocab == nil {
			return 0, errors.New("synth: --arch llama needs a vocabulary")
		}
	case "bert":
		if s.Pooling == "" {
			s.Pooling = "mean"
		}
		if _, ok := bertPooling[s.Pooling]; !ok {
			return 0, fmt.Errorf("synth: --pooling %q not supported (mean, cls, last)", s.Pooling)
		}
		if vocab == nil {
			toks, _ := engine.BertSyntheticVocab()
			nVocab = len(toks)
		}
	default:
		return 0, fmt.Errorf("synth: architecture %q not supported (llama, bert)", s.Arch)
	}
	if s.KVHeads == 0 {
		s.KVHeads = s.Heads
	}
	s.Type = strings.ToUpper(s.Type)
	if _, ok := synthFileTypes[s.Type]; !ok {
		return 0, fmt.Errorf("synth: --type %q not supported (F32, F16, Q8_0, Q4_0, Q4_K, Q6_K, Q4_K_M)", s.Type)
	}
	switch {
	case s.Dim <= 0 || s.Layers <= 0 || s.Heads <= 0 || s.KVHeads <= 0 || s.FFN <= 0 || s.Ctx <= 0:
		return 0, errors.New("synth: --dim, --layers, --heads, --kv-heads, --ffn and --ctx must be positive")
	case s.Dim%s.Heads != 0:
		return 0, fmt.Errorf("synth: --dim %d is not a multiple of --heads %d", s.Dim, s.Heads)
	case s.Heads%s.KVHeads != 0:
		return 0, fmt.Errorf("synth: --heads %d is not a multiple of --kv-heads %d", s.Heads, s.KVHeads)
	case (s.Dim/s.Heads)%2 != 0 && s.Arch != "bert":
		return 0, fmt.Errorf("synth: head size %d must be even (RoPE)", s.Dim/s.Heads)
	case s.Arch == "bert" && s.KVHeads != s.Heads:
		return 0, errors.New("synth: bert has as many key/value heads as heads")
	}
	if vocab == nil {
		return nVocab, nil
	}
	var toks []string
	for _, kv := range vocab {
		if kv.Key == "tokenizer.ggml.tokens" {
			toks, _ = kv.Value.Strings()
		}
	}
	if len(toks) == 0 {
		return 0, errors.New("synth: --vocab-from has no tokenizer.ggml.tokens")
	}
	return len(toks), nil
}

type synthStats struct {
	tensors       int
	params, bytes int64
}

// writeSynth writes the model to path, streaming each tensor.
// vocab is the tokenizer.* metadata to write.
func writeSynth(ctx context.Context, s synthSpec, vocab []gguf.KV, path string) (synthStats, error) {
	nVocab, err := s.validate(vocab)
	if err != nil {
		return synthStats{}, err
	}
	w := gguf.NewWriter()
	arch := s.Arch
	w.Set("general.architecture", gguf.NewValue(arch))
	w.Set("general.name", gguf.NewValue(s.Name))
	w.Set(arch+".context_length", gguf.NewValue(uint32(s.Ctx)))
	w.Set(arch+".embedding_length", gguf.NewValue(uint32(s.Dim)))
	w.Set(arch+".feed_forward_length", gguf.NewValue(uint32(s.FFN)))
	w.Set(arch+".block_count", gguf.NewValue(uint32(s.Layers)))
	w.Set(arch+".attention.head_count", gguf.NewValue(uint32(s.Heads)))
	if arch == "bert" {
		w.Set(arch+".attention.layer_norm_epsilon", gguf.NewValue(s.NormEps))
		w.Set(arch+".attention.causal", gguf.NewValue(false))
		w.Set(arch+".pooling_type", gguf.NewValue(bertPooling[s.Pooling]))
		w.Set("tokenizer.ggml.token_type_count", gguf.NewValue(uint32(2)))
	} else {
		w.Set(arch+".attention.head_count_kv", gguf.NewValue(uint32(s.KVHeads)))
		w.Set(arch+".rope.dimension_count", gguf.NewValue(uint32(s.Dim/s.Heads)))
		w.Set(arch+".rope.freq_base", gguf.NewValue(s.RopeTheta))
		w.Set(arch+".attention.layer_norm_rms_epsilon", gguf.NewValue(s.NormEps))
	}
	w.Set(arch+".vocab_size", gguf.NewValue(uint32(nVocab)))
	if vocab != nil {
		for _, kv := range vocab {
			if strings.HasPrefix(kv.Key, "tokenizer.") {
				w.Set(kv.Key, kv.Value)
			}
		}
	} else {
		// the built-in WordPiece vocabulary, as llama.cpp's converter
		// writes a BERT one
		toks, types := engine.BertSyntheticVocab()
		w.Set("tokenizer.ggml.model", gguf.NewValue("bert"))
		w.Set("tokenizer.ggml.tokens", gguf.NewArray(toks))
		w.Set("tokenizer.ggml.token_type", gguf.NewArray(types))
		for id, key := range []string{"padding", "unknown", "cls", "seperator", "mask"} {
			w.Set("tokenizer.ggml."+key+"_token_id", gguf.NewValue(uint32(id)))
		}
		w.Set("tokenizer.ggml.bos_token_id", gguf.NewValue(uint32(2))) // [CLS], where llama.cpp reads it
	}
	if s.Type != "F32" && s.Type != "F16" {
		w.Set("general.quantization_version", gguf.NewValue(uint32(2)))
	}
	w.Set("general.file_type", gguf.NewValue(synthFileTypes[s.Type]))

	tensors, err := engine.SyntheticTensors(engine.SyntheticSpec{
		Arch: s.Arch, Vocab: nVocab, Dim: s.Dim, Layers: s.Layers, Heads: s.Heads, KVHeads: s.KVHeads, FFN: s.FFN,
		Ctx: s.Ctx, Type: s.Type, Seed: s.Seed, RopeTheta: s.RopeTheta, NormEps: s.NormEps,
	})
	if err != nil {
		return synthStats{}, fmt.Errorf("synth: %w", err)
	}
	var st synthStats
	for _, t := range tensors {
		dims := make([]uint64, len(t.Dims))
		for i, d := range t.Dims {
			dims[i] = uint64(d)
		}
		if err := w.AddTensorFunc(t.Name, t.Type, dims, func(out io.Writer) error {
			return streamSynthTensor(ctx, s.Seed, t, out)
		}); err != nil {
			return synthStats{}, fmt.Errorf("synth: %w", err)
		}
		st.tensors++
		st.params += int64(t.Dims[0]) * int64(t.Rows())
	}
	out, err := os.Create(path)
	if err != nil {
		return synthStats{}, fmt.Errorf("synth: creating %s: %w", path, err)
	}
	n, err := w.WriteTo(out)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return synthStats{}, fmt.Errorf("synth: writing %s: %w", path, err)
	}
	st.bytes = n
	return st, nil
}

// streamSynthTensor generates t's rows (engine.SyntheticRow: row r from
// its own generator, so the result does not depend on scheduling),
// quantizes them on all cores in chunks, and writes them in order.
func streamSynthTensor(ctx context.Context, seed uint64, t engine.SyntheticTensor, out io.Writer) error {
	rowLen, rows := t.Dims[0], t.Rows()
	rowBytes, err := ggml.RowBytes(t.Type, rowLen)
	if err != nil {
		return err
	}

	const chunkRows = 32
	nChunks := (rows + chunkRows - 1) / chunkRows
	workers := max(1, min(runtime.GOMAXPROCS(0), nChunks))
	type result struct {
		buf []byte
		err error
	}
	// One slot per chunk in flight, written in order.
	results := make([]chan result, nChunks)
	for i := range results {
		results[i] = make(chan result, 1)
	}
	sem := make(chan struct{}, workers*2)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for c := range nChunks {
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func(c int) {
				defer wg.Done()
				lo, hi := c*chunkRows, min(rows, (c+1)*chunkRows)
				buf := make([]byte, (hi-lo)*rowBytes)
				row := make([]float32, rowLen)
				var err error
				for r := lo; r < hi && err == nil; r++ {
					engine.SyntheticRow(seed, t, r, row)
					err = ggml.QuantizeRow(t.Type, row, buf[(r-lo)*rowBytes:(r-lo+1)*rowBytes])
				}
				results[c] <- result{buf, err}
			}(c)
		}
	}()
	for c := range nChunks {
		var res result
		select {
		case res = <-results[c]:
		case <-ctx.Done():
			return ctx.Err()
		}
		<-sem
		if res.err != nil {
			return res.err
		}
		if _, err := out.Write(res.buf); err != nil {
			return err
		}
	}
	return nil
}
