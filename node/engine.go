package node

import (
	"context"
	"errors"
	"fmt"
	"helexa/cuda"

	"helexa/node/chattmpl"
	"helexa/node/engine"
	"helexa/node/tokenizer"
	"helexa/node/toolcall"
)

// vocabTemplate fills a loadedModel's text side from a tokenizer and a
// chat template source (empty: the model ships none and ChatML is used).
func vocabTemplate(m *loadedModel, tok *tokenizer.Tokenizer, tmplSrc string) error {
	m.Encode = tok.Encode
	// Control tokens decode to nothing, but some of them are the markers
	// the tool-call and reasoning parsers look for: those keep their text.
	markers := map[int32]string{}
	for _, text := range toolcall.Markers() {
		if id, ok := tok.Lookup(text); ok && tok.IsControl(id) {
			markers[id] = text
		}
	}
	m.NewDecoder = func() decoder {
		if len(markers) == 0 {
			return tok.NewDecoder()
		}
		return &markerDecoder{d: tok.NewDecoder(), markers: markers}
	}
	m.IsEOG = tok.IsEOG
	m.EOG = nil
	for id := range int32(tok.VocabSize()) {
		if tok.IsEOG(id) {
			m.EOG = append(m.EOG, id)
		}
	}
	m.TokenText = tok.TokenText
	m.TokenBytes = func(id int32) []byte {
		if text, ok := markers[id]; ok {
			return []byte(text)
		}
		return tok.TokenBytes(id)
	}
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

// markerDecoder is a streaming decoder that writes the text of marker
// control tokens.
type markerDecoder struct {
	d       *tokenizer.Decoder
	markers map[int32]string
}

func (m *markerDecoder) Add(id int32) string {
	if text, ok := m.markers[id]; ok {
		return m.d.Flush() + text
	}
	return m.d.Add(id)
}

func (m *markerDecoder) Flush() string { return m.d.Flush() }

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
				MemEstimate: info.MemEstimate, KVBytesPerToken: info.KVBytesPerToken(), KVTokensWithin: info.KVTokensWithin,
				ParamCount: info.ParamCount, ActiveParamCount: info.ActiveParamCount,
				EmbeddingOnly: engine.EmbeddingOnlyArch(info.Arch),
			}, nil
		},
		Load: loadEngineModel,
	}
}

// loadEngineModel loads a model with the engine (on the device worker).
func loadEngineModel(ctx context.Context, path string, o loadOptions) (*loadedModel, error) {
	em, err := engine.Load(path, engine.Options{ContextLength: o.ContextLength, KVTokens: o.KVTokens, MaxCached: o.MaxCached,
		Threads: o.Threads, Backend: o.Backend})
	if err != nil {
		if errors.Is(err, engine.ErrUnsupported) {
			return nil, fmt.Errorf("%w: %v", errUnsupported, err)
		}
		if errors.Is(err, cuda.ErrInsufficientMemory) {
			// The device refused an allocation the estimate allowed:
			// 507 like a load refused up front; the runner freed what it had.
			return nil, fmt.Errorf("%w: %v", errNoMemory, err)
		}
		return nil, err
	}
	m := &loadedModel{
		NCtx: em.NCtx(), NVocab: em.NVocab(), Engine: em,
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
	if em.EmbeddingOnly() {
		m.EmbeddingOnly, m.Render, m.Template = true, nil, ""
	}
	return m, nil
}
