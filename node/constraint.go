package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"helexa/node/grammar"
	"helexa/node/sampler"
	"helexa/node/toolcall"
)

// constraint is a grammar a generation must follow, compiled and checked
// when the request is read.
type constraint struct {
	g   *grammar.Grammar
	key string // the grammar's source and root: generations under the same one share masks
}

// thinkClose ends a reasoning block.
const thinkClose = "</think>"

// grammarVocab is the model's token trie for grammar masks, built once.
func (m *loadedModel) grammarVocab() *grammar.Vocab {
	m.vocabOnce.Do(func() {
		tb := m.TokenBytes
		if tb == nil {
			tb = func(id int32) []byte { return []byte(m.TokenText(id)) }
		}
		m.vocab = grammar.NewVocab(m.NVocab, tb, m.EOG)
	})
	return m.vocab
}

// toolChoice is a request's tool_choice.
type toolChoice struct {
	mode string // auto, none, required, function
	name string // the function, for mode "function"
}

// parseToolChoice reads tool_choice: "auto" (also when absent), "none",
// "required", or a named function ({"type": "function", "function":
// {"name": …}}, or the flat {"type": "function", "name": …}).
func parseToolChoice(raw json.RawMessage) (toolChoice, error) {
	if isNull(raw) {
		return toolChoice{mode: "auto"}, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto", "none", "required":
			return toolChoice{mode: s}, nil
		}
		return toolChoice{}, badRequest("tool_choice", `tool_choice must be "auto", "none", "required" or a named function, got %q`, s)
	}
	var obj struct {
		Type     string `json:"type"`
		Name     string `json:"name"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(raw, &obj) != nil || obj.Type != "function" {
		return toolChoice{}, badRequest("tool_choice", `tool_choice must be a string or {"type": "function", "function": {"name": …}}`)
	}
	name := obj.Function.Name
	if name == "" {
		name = obj.Name
	}
	if name == "" {
		return toolChoice{}, badRequest("tool_choice", "tool_choice names no function")
	}
	return toolChoice{mode: "function", name: name}, nil
}

// toolDef is one declared function.
type toolDef struct {
	name   string
	params json.RawMessage
}

// parseTools reads the request's function tools.
func parseTools(raw json.RawMessage) ([]toolDef, error) {
	if isNull(raw) {
		return nil, nil
	}
	var list []struct {
		Type     string `json:"type"`
		Function struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"function"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return nil, badRequest("tools", "tools must be a list of tool objects")
	}
	var out []toolDef
	for i, t := range list {
		if t.Type != "" && t.Type != "function" {
			return nil, badRequest("tools", "tools[%d]: tool type %q is not supported (function only)", i, t.Type)
		}
		if t.Function.Name == "" {
			return nil, badRequest("tools", "tools[%d].function.name is required", i)
		}
		out = append(out, toolDef{name: t.Function.Name, params: t.Function.Parameters})
	}
	return out, nil
}

// constraintInput is what a request asks to enforce.
type constraintInput struct {
	grammar        string          // raw GBNF
	responseFormat json.RawMessage // response_format
	jsonSchema     json.RawMessage // llama.cpp's json_schema (completions)
	tools          []toolDef
	choice         toolChoice
	parallel       bool
	format         toolcall.Format // the model's tool-call formats
	// mistralArgs: the model writes Mistral calls as NAME[ARGS]{…}
	// (its template shows [ARGS]) rather than a JSON list.
	mistralArgs bool
	// think: the template opened a reasoning block (thinkOpened), or
	// the model may open one (thinkOptional); the grammar applies from
	// the text after </think>.
	think thinkMode
}

type thinkMode uint8

const (
	thinkNone thinkMode = iota
	thinkOptional
	thinkOpened
)

// thinkModeOf is the reasoning mode of a chat generation: none when the
// model does not reason or the prompt already closed the block (thinking
// turned off, as Qwen3's enable_thinking false renders it).
func thinkModeOf(cfg toolcall.Config, prompt string) thinkMode {
	switch {
	case !cfg.Reasoning:
		return thinkNone
	case cfg.StartInReasoning:
		return thinkOpened
	case strings.HasSuffix(strings.TrimRight(prompt, " \t\r\n"), thinkClose):
		return thinkNone
	}
	return thinkOptional
}

// contentGrammar adds the rule "content" for what the request asks of the
// answer's text, and reports whether there is any.
func contentGrammar(b *grammar.Builder, in constraintInput) (bool, error) {
	set := 0
	for _, x := range []bool{in.grammar != "", !isNull(in.responseFormat), !isNull(in.jsonSchema)} {
		if x {
			set++
		}
	}
	if set > 1 {
		return false, badRequest("grammar", "give only one of grammar, response_format and json_schema")
	}
	schemaRule := func(schema json.RawMessage, param, path string) error {
		expr, err := b.Schema(schema, path)
		if err != nil {
			return schemaErr(param, err)
		}
		b.Rule("content", expr)
		return nil
	}
	switch {
	case !isNull(in.jsonSchema):
		return true, schemaRule(in.jsonSchema, "json_schema", "json_schema")
	case !isNull(in.responseFormat):
		var rf struct {
			Type       string          `json:"type"`
			Schema     json.RawMessage `json:"schema"` // llama.cpp: json_object with a schema
			JSONSchema *struct {
				Name   string          `json:"name"`
				Schema json.RawMessage `json:"schema"`
				Strict *bool           `json:"strict"`
			} `json:"json_schema"`
		}
		if json.Unmarshal(in.responseFormat, &rf) != nil {
			return false, badRequest("response_format", "response_format must be an object with a type")
		}
		switch rf.Type {
		case "text":
			return false, nil
		case "json_object":
			if !isNull(rf.Schema) {
				return true, schemaRule(rf.Schema, "response_format", "response_format.schema")
			}
			b.Rule("content", "object")
			return true, nil
		case "json_schema":
			if rf.JSONSchema == nil || isNull(rf.JSONSchema.Schema) {
				// OpenAI requires the schema; an absent one is any JSON.
				if rf.JSONSchema == nil {
					return false, badRequest("response_format", "response_format.json_schema is required for type json_schema")
				}
				b.Rule("content", "value")
				return true, nil
			}
			return true, schemaRule(rf.JSONSchema.Schema, "response_format", "response_format.json_schema.schema")
		}
		return false, badRequest("response_format", `response_format type must be "text", "json_object" or "json_schema", got %q`, rf.Type)
	case in.grammar != "":
		if _, err := grammar.ParseGBNF(in.grammar, "root"); err != nil {
			return false, badRequest("grammar", "grammar: %v", err)
		}
		return true, nil
	}
	return false, nil
}

func schemaErr(param string, err error) error {
	var se *grammar.SchemaError
	if errors.As(err, &se) {
		return badRequest(param, "%s", se.Error())
	}
	return badRequest(param, "%v", err)
}

// buildConstraint makes the request's constraint, or nil when it has
// none. Every error is a 400 naming what could not be enforced.
func buildConstraint(in constraintInput) (*constraint, error) {
	b := grammar.NewBuilder()
	hasContent, err := contentGrammar(b, in)
	if err != nil {
		return nil, err
	}
	forced := in.choice.mode == "required" || in.choice.mode == "function"
	limitCalls := !in.parallel && in.choice.mode == "auto" && len(in.tools) > 0
	if in.grammar != "" && (forced || (limitCalls && in.format&(toolcall.Hermes|toolcall.Mistral) != 0)) {
		return nil, badRequest("grammar", "a raw grammar cannot be combined with tool_choice %q or parallel_tool_calls false", in.choice.mode)
	}
	if in.grammar != "" {
		// A raw grammar governs the whole output.
		return finishConstraint(in.grammar+"\n", grammar.NewBuilder(), "root", in)
	}
	var root string
	switch {
	case forced:
		expr, err := callsGrammar(b, in, true)
		if err != nil {
			return nil, err
		}
		root = expr
	case in.choice.mode == "auto" && len(in.tools) > 0 && hasContent:
		// The answer is the asked format or tool calls.
		expr, err := callsGrammar(b, in, true)
		if err != nil {
			return nil, err
		}
		root = "content | " + expr
	case limitCalls:
		// Free text without a second call.
		expr, err := callsGrammar(b, in, false)
		if err != nil {
			return nil, err
		}
		root = expr
	case hasContent:
		root = "content"
	}
	if root == "" {
		return nil, nil
	}
	return finishConstraint(jsonBase, b, root, in)
}

// jsonBase marks a grammar made of the builder's rules and the JSON
// primitives (a raw grammar brings its own).
const jsonBase = ""

// finishConstraint compiles the grammar (base, then the builder's rules)
// with a start rule over root, after the reasoning block if any.
func finishConstraint(base string, b *grammar.Builder, root string, in constraintInput) (*constraint, error) {
	top := "helexa-root"
	// Reasoning stays free: the grammar starts after </think> and a few
	// blank characters (the model's line breaks).
	switch in.think {
	case thinkOpened:
		root = fmt.Sprintf(`%s "</think>" [ \t\r\n]{0,16} ( %s )`, b.TextWithout(thinkClose), root)
	case thinkOptional:
		root = fmt.Sprintf(`( "<think>" %s "</think>" [ \t\r\n]{0,16} )? ( %s )`, b.TextWithout(thinkClose), root)
	}
	src := base + b.Rules()
	if base == jsonBase {
		src = b.Source()
	}
	src += fmt.Sprintf("%s ::= %s\n", top, root)
	g, err := grammar.ParseGBNF(src, top)
	if err != nil {
		if in.grammar != "" {
			return nil, badRequest("grammar", "grammar: %v", err)
		}
		return nil, fmt.Errorf("building the output grammar: %w", err)
	}
	if _, err := grammar.NewDFA(g); err != nil {
		return nil, badRequest("", "the output constraint cannot be followed: %v", err)
	}
	return &constraint{g: g, key: src + "\x00" + top}, nil
}

// callsGrammar adds the tool-call rules for the model's format and
// returns the expression of the calls: forced (one call, or several when
// parallel), or, when not forced, free text with at most one call.
func callsGrammar(b *grammar.Builder, in constraintInput, forced bool) (string, error) {
	tools := in.tools
	if in.choice.mode == "function" {
		tools = nil
		for _, t := range in.tools {
			if t.name == in.choice.name {
				tools = append(tools, t)
			}
		}
		if len(tools) == 0 {
			return "", badRequest("tool_choice", "tool_choice names function %q, which is not among the tools", in.choice.name)
		}
	}
	if len(tools) == 0 {
		return "", badRequest("tool_choice", "tool_choice %q needs tools", in.choice.mode)
	}
	format := in.format
	argsKey := "arguments"
	switch {
	case format&toolcall.Hermes != 0:
		format = toolcall.Hermes
	case format&toolcall.Mistral != 0:
		format = toolcall.Mistral
	case format&toolcall.Llama3JSON != 0:
		format, argsKey = toolcall.Llama3JSON, "parameters"
	default:
		format = toolcall.Hermes // see callFormat: parsing follows
	}
	var alts, argAlts []string
	for i, t := range tools {
		params := t.params
		if isNull(params) {
			params = json.RawMessage(`{"type":"object"}`)
		}
		args, err := b.Schema(params, fmt.Sprintf("tools[%d].function.parameters", i))
		if err != nil {
			return "", schemaErr("tools", err)
		}
		name, _ := json.Marshal(t.name)
		alts = append(alts, fmt.Sprintf(`"{" sp "\"name\"" sp ":" sp %s sp "," sp "\"%s\"" sp ":" sp %s sp "}"`,
			grammar.Quote(string(name)), argsKey, args))
		argAlts = append(argAlts, fmt.Sprintf(`"[TOOL_CALLS]" %s "[ARGS]" %s`, grammar.Quote(t.name), args))
	}
	b.Rule("helexa-call", strings.Join(alts, " | "))
	switch format {
	case toolcall.Hermes:
		b.Rule("helexa-block", `"<tool_call>\n" helexa-call "\n</tool_call>"`)
		if !forced {
			return b.TextWithout("<tool_call>") + " helexa-block?", nil
		}
		if in.parallel {
			return `helexa-block ( "\n" helexa-block )*`, nil
		}
		return "helexa-block", nil
	case toolcall.Mistral:
		// [TOOL_CALLS][{…}, …] (a space may follow the marker), or
		// [TOOL_CALLS]NAME[ARGS]{…} per call.
		if in.mistralArgs {
			b.Rule("helexa-mistral-one", strings.Join(argAlts, " | "))
			b.Rule("helexa-mistral", "helexa-mistral-one+")
		} else {
			b.Rule("helexa-mistral", `"[TOOL_CALLS]" " "? "[" helexa-call ( sp "," sp helexa-call )* "]"`)
			b.Rule("helexa-mistral-one", `"[TOOL_CALLS]" " "? "[" helexa-call "]"`)
		}
		switch {
		case !forced:
			return b.TextWithout("[TOOL_CALLS]") + " helexa-mistral-one?", nil
		case in.parallel:
			return "helexa-mistral", nil
		}
		return "helexa-mistral-one", nil
	default: // Llama 3: one bare JSON object
		if !forced {
			// The parser reads a bare object only at the start (after
			// blanks), and calls after <|python_tag|>: text that
			// starts otherwise and never writes the tag, or one call.
			free := b.TextWithout("<|python_tag|>")
			return fmt.Sprintf(`[ \t\r\n]{0,8} ( helexa-call | "<|python_tag|>" helexa-call | [^{< \t\r\n] %s | "<" [^|] %s )?`, free, free), nil
		}
		return "helexa-call", nil
	}
}

// callFormat is the tool-call format a parser must read for a request:
// the model's, or Hermes when the template shows none and a call is
// forced (the grammar writes Hermes then).
func callFormat(f toolcall.Format, choice toolChoice) toolcall.Format {
	if f&(toolcall.Hermes|toolcall.Mistral|toolcall.Llama3JSON) == 0 && (choice.mode == "required" || choice.mode == "function") {
		return f | toolcall.Hermes
	}
	return f
}

// grammarCache keeps the compiled grammars of a model's recent
// generations, so requests under the same schema share masks. Owned by
// the scheduler's loop.
type grammarCache struct {
	list []*cachedGrammar // most recent last
}

type cachedGrammar struct {
	key string
	c   *grammar.Compiled
}

const (
	grammarCacheSize = 8
	// grammarRefresh is the number of states after which a cached
	// grammar starts afresh (a recursive schema meets new states with
	// every deeper answer; generations still on the old one finish on it).
	grammarRefresh = 20000
)

func (gc *grammarCache) get(c *constraint, v *grammar.Vocab) (*grammar.Compiled, error) {
	for i, e := range gc.list {
		if e.key == c.key && e.c.Size() < grammarRefresh {
			copy(gc.list[i:], gc.list[i+1:])
			gc.list[len(gc.list)-1] = e
			return e.c, nil
		}
	}
	comp, err := grammar.Compile(c.g, v)
	if err != nil {
		return nil, err
	}
	for i, e := range gc.list {
		if e.key == c.key { // grown too large: replaced
			gc.list = append(gc.list[:i], gc.list[i+1:]...)
			break
		}
	}
	if len(gc.list) >= grammarCacheSize {
		gc.list = append(gc.list[:0], gc.list[1:]...)
	}
	gc.list = append(gc.list, &cachedGrammar{key: c.key, c: comp})
	return comp, nil
}

// constrain masks q's logits to the tokens its grammar allows now.
// Called by the scheduler's loop.
func (s *scheduler) constrain(q *sequence) error {
	c := q.req.Constraint
	if c == nil {
		return nil
	}
	v := s.in.m.grammarVocab()
	if q.gm == nil {
		comp, err := s.grammars.get(c, v)
		if err != nil {
			return badRequest("", "the output constraint cannot be followed: %v", err)
		}
		q.gm = comp.Matcher()
	}
	mask, err := q.gm.Mask()
	if err != nil {
		return badRequest("", "the output constraint cannot be followed: %v", err)
	}
	if sampler.ApplyMask(q.logits, mask) == 0 {
		return fmt.Errorf("%s: the output grammar allows no token here", s.in.id)
	}
	return nil
}

// advance moves q's grammar on by the chosen token and reports whether
// the grammar is complete (the generation then ends with "stop").
func (s *scheduler) advance(q *sequence, id int32) (bool, error) {
	if q.gm == nil || s.in.m.grammarVocab().IsEOG(id) {
		return false, nil // no grammar, or the end (which the mask allowed)
	}
	if err := q.gm.Accept(id); err != nil {
		return false, fmt.Errorf("%s: the sampled token broke the output grammar: %w", s.in.id, err)
	}
	return q.gm.Done(), nil
}
