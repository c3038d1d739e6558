package node

import (
	"context"
	"errors"
	"fmt"

	"helexa/node/chattmpl"
	"helexa/node/engine"
	"helexa/node/tokenizer"
)

// vocabTemplate fills a loadedModel's text side from a tokenizer and a
// chat template source (empty: the model ships none and ChatML is used).
func vocabTemplate(m *loadedModel, tok *tokenizer.Tokenizer, tmplSrc string) error {
	m.Encode = tok.Encode
	m.NewDecoder = func() decoder { return tok.NewDecoder() }
	m.IsEOG = tok.IsEOG
	m.TokenText = tok.TokenText
	m.HasToken = func(text string) bool {
		// A marker such as "<think>" or "[TOOL_CALLS]" is a vocabulary
		// entry of its own only when the model was trained with it.
		_, ok := tok.Lookup(text)
		return ok
	}
	bos, eos := "", ""
	if tok.BOS() >= 0 {
		bos = tok.BOSText()
	}
	if tok.EOS() >= 0 {
		eos = tok.EOSText()
	}
	if tok.AddBOS() {
		m.BOSText = bos
	}
	if tmplSrc == "" {
		tmplSrc = chattmpl.ChatML
	}
	t, err := chattmpl.Parse(tmplSrc)
	if err != nil {
		return fmt.Errorf("%w: %v", errUnsupported, err)
	}
	m.Template = tmplSrc
	m.Render = func(in renderInput) (string, error) {
		out, err := t.Render(chattmpl.Input{Messages: in.Messages, Tools: in.Tools, AddGenerationPrompt: in.AddGenerationPrompt,
			BOSToken: bos, EOSToken: eos, Extra: in.Extra})
		var re *chattmpl.RaiseError
		if errors.As(err, &re) {
			return "", fmt.Errorf("the chat template refused the conversation: %s", re.Message)
		}
		return out, err
	}
	return nil
}

// realEngine connects the neuron to the engine package.
func realEngine() engineHooks {
	return engineHooks{
		Inspect: func(path string) (modelInfo, error) {
			info, err := engine.Inspect(path)
			if err != nil {
				return modelInfo{}, err
			}
			return modelInfo{
				Format: info.Format, Arch: info.Arch, Quant: info.Quant, SizeBytes: info.SizeBytes,
				ContextLength: info.ContextLength, ChatTemplate: info.ChatTemplate,
				MemEstimate: info.MemEstimate,
			}, nil
		},
		Load: loadEngineModel,
	}
}

// loadEngineModel loads a model with the engine (on the device worker).
func loadEngineModel(ctx context.Context, path string, o loadOptions) (*loadedModel, error) {
	em, err := engine.Load(path, engine.Options{ContextLength: o.ContextLength, Slots: o.Slots, Threads: o.Threads, Backend: o.Backend})
	if err != nil {
		if errors.Is(err, engine.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %v", errUnsupported, err)
		}
		return nil, err
	}
	m := &loadedModel{
		NCtx: em.NCtx(), NVocab: em.NVocab(), Slots: em.Slots(),
		Forward:          em.Forward,
		Close:            em.Close,
		MemBytes:         em.MemBytes(),
		GenerationConfig: em.GenerationConfig,
	}
	if em.Tok == nil {
		_ = em.Close()
		return nil, fmt.Errorf("%w: %s has no tokenizer", errUnsupported, path)
	}
	if err := vocabTemplate(m, em.Tok, em.Info.ChatTemplate); err != nil {
		_ = em.Close()
		return nil, err
	}
	return m, nil
}
