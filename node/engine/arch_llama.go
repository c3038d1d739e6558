package engine

// llama: pre-norm attention and a SwiGLU FFN, each added to the
// residual stream. RoPE pairs adjacent dimensions in GGUF files (their
// converter permutes Q/K rows); optional Q/K/V biases and Q/K norms are
// computed when a file has them. Llama 3's frequency factors and linear
// scaling are read by the common loader. Mistral's dense models load as
// llama.
func init() {
	registerArch(&archDef{
		name:    "llama",
		hf:      []string{"LlamaForCausalLM", "MistralForCausalLM"},
		rope:    RopeNorm,
		tensors: denseTensors(false),
		layer:   llamaLayer,
	})
}

// denseTensors declares a llama-shaped layer: attention (Q/K norms
// required when qkNorm) and a gated FFN.
func denseTensors(qkNorm bool) func(h *Hparams, il int) []tensorDecl {
	return func(h *Hparams, il int) []tensorDecl {
		return append(declAttn(h, qkNorm), declFFN(h)...)
	}
}

// llamaLayer is one llama layer over n rows.
func llamaLayer(r *cpuRunner, il, n int) {
	s, lf := &r.s, &r.layers[il]
	// x += attention(rmsnorm(x)·attn_norm)
	r.norm(s.xb, s.x, lf.attnNorm, n)
	r.attention(il, n)
	r.residual(n)
	// x += down(silu(gate(h)) ⊙ up(h)), h = rmsnorm(x)·ffn_norm
	r.norm(s.xb, s.x, lf.ffnNorm, n)
	r.ffn(il, n, swiglu)
	r.residual(n)
}
