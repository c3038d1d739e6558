package cuda

import (
	"helexa/node/engine"
	"helexa/node/ggml"
)

// WeightClass names the tolerance class of a model's weights: "f32" (F32
// and BF16), "f16", or "quant".
func WeightClass(w *engine.Weights) string {
	switch w.Layers[0].Wq.Type {
	case ggml.F32, ggml.BF16:
		return "f32"
	case ggml.F16:
		return "f16"
	}
	return "quant"
}
