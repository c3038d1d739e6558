package engine

import "fmt"

// qwen3moe: qwen3's attention (QK-norm, NeoX RoPE) and, instead of the
// dense FFN, a mixture of experts: a softmax router over expert_count
// experts picks expert_used_count per token, their weights renormalised
// to sum to 1 (expert_weights_norm, on unless the file says otherwise),
// and the token's FFN output is the weighted sum of its experts' SwiGLU
// FFNs. Expert matrices are stored 3-D (ffn_{gate,up,down}_exps).
func init() {
	registerArch(&archDef{
		name: "qwen3moe",
		hf:   nil, // GGUF only
		rope: RopeNeoX,
		gguf: func(h *Hparams, k ggufKeys) error {
			h.NExpert = k.uint("expert_count", 0)
			h.NExpertUsed = k.uint("expert_used_count", 0)
			def := 0
			if h.NExpertUsed > 0 {
				def = h.NFF / h.NExpertUsed
			}
			h.NFFExp = k.uint("expert_feed_forward_length", def)
			h.ExpertNormTopK = k.bool("expert_weights_norm", true)
			return nil
		},
		check:   checkMoE,
		tensors: func(h *Hparams, il int) []tensorDecl { return append(declAttn(h, true), declMoE(h)...) },
		layer:   qwen3moeLayer,
	})
}

// maxExpertsUsed bounds the experts one token uses (real models use 1 to
// 16); the runner's scratch grows with it.
const maxExpertsUsed = 64

// checkMoE validates the expert counts.
func checkMoE(h *Hparams) error {
	if h.NExpert <= 0 || h.NExpertUsed <= 0 || h.NExpertUsed > h.NExpert || h.NExpertUsed > maxExpertsUsed || h.NFFExp <= 0 || h.NExpert > 1<<12 {
		return fmt.Errorf("%w: %s: %d experts, %d used per token, expert FFN %d", ErrUnsupported, h.Arch, h.NExpert, h.NExpertUsed, h.NFFExp)
	}
	return nil
}

// qwen3moeLayer is one qwen3moe layer over n rows.
func qwen3moeLayer(r *cpuRunner, il, n int) {
	s, lf := &r.s, &r.layers[il]
	// x += attention(rmsnorm(x)·attn_norm)
	r.norm(s.xb, s.x, lf.attnNorm, n)
	r.attention(il, n)
	r.residual(n)
	// x += Σ_chosen w_e · down_e(silu(gate_e(h)) ⊙ up_e(h)), h = rmsnorm(x)·ffn_norm
	r.norm(s.xb, s.x, lf.ffnNorm, n)
	r.moe(il, n)
	r.residual(n)
}
