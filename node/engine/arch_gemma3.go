package engine

import "math"

// gemma3: embeddings scaled by √dim; RMS norms before and after both
// attention and the FFN (the GGUF converter stores Gemma's (1+w) norm
// weights already shifted, so they are plain RMSNorms here); per-head
// Q/K norms; a GELU-gated FFN (tanh approximation); NeoX RoPE. Five of
// every six layers attend to a sliding window of the last
// attention.sliding_window positions with their own RoPE base
// (rope.freq_base_swa) and no scaling; the global layers use
// rope.freq_base with the file's linear scaling. Logits are soft-capped
// when final_logit_softcapping is set.
func init() {
	registerArch(&archDef{
		name: "gemma3",
		hf:   nil, // GGUF only
		rope: RopeNeoX,
		gguf: func(h *Hparams, k ggufKeys) error {
			h.EmbedScale = float32(math.Sqrt(float64(h.NEmbd)))
			if w := k.uint("attention.sliding_window", 0); w > 0 {
				h.SlidingWindow = w
				h.SWA = swaPattern(h.NLayer, k.uint("attention.sliding_window_pattern", 6))
				h.RopeThetaSWA = k.float("rope.freq_base_swa", 10000)
				h.RopeFreqScaleSWA = 1
			}
			h.FinalSoftcap = k.float("final_logit_softcapping", 0)
			// Gemma 3 27B scales queries by 1/√(dim/heads), the others by
			// 1/√head_dim.
			if h.NLayer == 62 && h.NHead > 0 {
				h.AttnScale = float32(1 / math.Sqrt(float64(h.NEmbd/h.NHead)))
			}
			return nil
		},
		tensors: func(h *Hparams, il int) []tensorDecl {
			return append(append(declAttn(h, true), declFFN(h)...), declPostNorms(h)...)
		},
		layer: gemma3Layer,
	})
}

// gemma3Layer is one gemma3 layer over n rows.
func gemma3Layer(r *cpuRunner, il, n int) {
	s, lf := &r.s, &r.layers[il]
	// x += rmsnorm(attention(rmsnorm(x)·attn_norm))·post_attention_norm
	r.norm(s.xb, s.x, lf.attnNorm, n)
	r.attention(il, n)
	r.norm(s.xb, s.xb, lf.postAttnNorm, n)
	r.residual(n)
	// x += rmsnorm(down(gelu(gate(h)) ⊙ up(h)))·post_ffw_norm, h = rmsnorm(x)·ffn_norm
	r.norm(s.xb, s.x, lf.ffnNorm, n)
	r.ffn(il, n, geglu)
	r.norm(s.xb, s.xb, lf.postFFNNorm, n)
	r.residual(n)
}
