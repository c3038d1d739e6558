package node

import (
	"context"
	"errors"
	"fmt"

	"helexa/node/chattmpl"
	"helexa/node/tokenizer"
)

// vocabTemplate fills a loadedModel's text side from a tokenizer and a
// chat template source (empty: the model has none, ChatML is used when
// the vocabulary has its markers).
func vocabTemplate(m *loadedModel, tok *tokenizer.Tokenizer, tmplSrc string) error {
	m.Encode = tok.Encode
	m.NewDecoder = func() decoder { return tok.NewDecoder() }
	m.IsEOG = tok.IsEOG
	m.TokenText = tok.TokenText
	m.HasToken = func(text string) bool {
		id, ok := tok.Lookup(text)
		return ok && tok.IsControl(id) || ok && len(text) > 2 && text[0] == '<' || ok && len(text) > 2 && text[0] == '['
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
		if _, ok := tok.Lookup("<|im_start|>"); !ok {
			return nil // no template: completions only
		}
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
			return modelInfo{}, fmt.Errorf("%w: the engine is not built into this binary", errUnsupported)
		},
		Load: func(ctx context.Context, path string, o loadOptions) (*loadedModel, error) {
			return nil, fmt.Errorf("%w: the engine is not built into this binary", errUnsupported)
		},
	}
}
