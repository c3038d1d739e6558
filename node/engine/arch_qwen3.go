package engine

// qwen2 and qwen3: llama's layer (llamaLayer) with NeoX RoPE (rotate
// (i, i+d/2)); qwen2 adds Q/K/V biases, qwen3 per-head RMSNorms of Q and
// K before RoPE (required).
func init() {
	registerArch(&archDef{
		name:    "qwen2",
		hf:      []string{"Qwen2ForCausalLM"},
		rope:    RopeNeoX,
		tensors: denseTensors(false),
		layer:   llamaLayer,
	})
	registerArch(&archDef{
		name:    "qwen3",
		hf:      []string{"Qwen3ForCausalLM"},
		rope:    RopeNeoX,
		tensors: denseTensors(true),
		layer:   llamaLayer,
	})
}
