package toolcall

import (
	"encoding/hex"
	"math/rand/v2"
	"strings"
)

type state uint8

const (
	stContent state = iota
	stReasoning
	stBlock
)

// block is the kind of tool-call block being collected.
type block uint8

const (
	bHermes   block = iota // after <tool_call>, until </tool_call>
	bFunction              // from <function=, until </function>
	bLlama                 // a bare JSON object at the start of the output
	bPython                // after <|python_tag|>, until the end
	bMistral               // after [TOOL_CALLS], until the end
)

// Parser parses one generation. Not safe for concurrent use.
type Parser struct {
	cfg Config
	st  state
	blk block
	// opener is the marker that opened the current block, given back as
	// text when the block does not parse.
	opener string
	// buf is text not yet decided.
	buf string
	// atStart: nothing but whitespace since the start, the end of the
	// reasoning or the last tool call; leading whitespace is dropped there
	// and a bare Llama JSON call may begin.
	atStart bool
	// begun: any output seen at all (a <think> marker counts only first).
	begun    bool
	llamaOff bool
	res      Result
	out      []Delta
}

// NewParser starts parsing one generation.
func NewParser(cfg Config) *Parser {
	p := &Parser{cfg: cfg, atStart: true}
	if cfg.Reasoning && cfg.StartInReasoning {
		p.st = stReasoning
	}
	if p.cfg.NewID == nil {
		p.cfg.NewID = randomID
	}
	return p
}

func randomID() string {
	var b [12]byte
	for i := range b {
		b[i] = byte(rand.Uint32())
	}
	return "call_" + hex.EncodeToString(b[:])
}

// Add takes the next piece of generated text and returns the deltas it
// decides (possibly none). The returned slice is valid until the next call.
func (p *Parser) Add(text string) []Delta {
	p.out = p.out[:0]
	p.buf += text
	p.step(false)
	return p.out
}

// Finish ends the generation: held-back text is flushed, an unterminated
// block is parsed if it can be and given back as text if not.
func (p *Parser) Finish() []Delta {
	p.out = p.out[:0]
	p.step(true)
	return p.out
}

// Result returns everything parsed so far (call after Finish for the
// whole generation).
func (p *Parser) Result() Result {
	r := p.res
	if len(r.Calls) > 0 {
		r.Content = strings.TrimRight(r.Content, " \t\r\n")
	}
	r.Calls = append([]Call(nil), r.Calls...)
	return r
}

func (p *Parser) emitContent(s string) {
	if p.atStart {
		s = strings.TrimLeft(s, " \t\r\n")
	}
	if s == "" {
		return
	}
	p.atStart = false
	p.begun = true
	p.res.Content += s
	p.out = append(p.out, Delta{Content: s})
}

func (p *Parser) emitReasoning(s string) {
	if s == "" {
		return
	}
	p.begun = true
	p.res.Reasoning += s
	p.out = append(p.out, Delta{Reasoning: s})
}

func (p *Parser) emitCalls(calls []Call) {
	for _, c := range calls {
		c.ID = p.cfg.NewID()
		i := len(p.res.Calls)
		p.res.Calls = append(p.res.Calls, c)
		p.out = append(p.out,
			Delta{Call: &CallDelta{Index: i, ID: c.ID, Name: c.Name}},
			Delta{Call: &CallDelta{Index: i, Arguments: c.Arguments}})
	}
	p.begun = true
	p.atStart = true
}

// marker is a text that switches state.
type marker struct {
	text string
	next func(p *Parser)
}

func (p *Parser) markers() []marker {
	var ms []marker
	t := p.cfg.Tools
	if p.cfg.Reasoning && p.atStart && !p.begun {
		ms = append(ms, marker{thinkOpen, func(p *Parser) { p.st = stReasoning; p.begun = true }})
	}
	if t&(Hermes|Qwen3Coder) != 0 {
		ms = append(ms, marker{toolCallOpen, func(p *Parser) { p.openBlock(bHermes, toolCallOpen) }})
	}
	if t&Qwen3Coder != 0 {
		ms = append(ms, marker{functionOpen, func(p *Parser) { p.openBlock(bFunction, ""); p.buf = functionOpen + p.buf }})
	}
	if t&Llama3JSON != 0 {
		ms = append(ms, marker{pythonTag, func(p *Parser) { p.openBlock(bPython, pythonTag) }})
	}
	if t&Mistral != 0 {
		ms = append(ms, marker{mistralCalls, func(p *Parser) { p.openBlock(bMistral, mistralCalls) }})
	}
	return ms
}

func (p *Parser) openBlock(b block, opener string) {
	p.st, p.blk, p.opener = stBlock, b, opener
}

// step consumes as much of buf as can be decided.
func (p *Parser) step(final bool) {
	for {
		switch p.st {
		case stReasoning:
			if i := strings.Index(p.buf, thinkClose); i >= 0 {
				p.emitReasoning(p.buf[:i])
				p.buf = p.buf[i+len(thinkClose):]
				p.st = stContent
				p.atStart = true
				continue
			}
			keep := 0
			if !final {
				keep = partialSuffix(p.buf, thinkClose)
			}
			p.emitReasoning(p.buf[:len(p.buf)-keep])
			p.buf = p.buf[len(p.buf)-keep:]
			return

		case stContent:
			if p.atStart {
				p.buf = strings.TrimLeft(p.buf, " \t\r\n")
				if p.buf == "" {
					return
				}
				if p.cfg.Tools&Llama3JSON != 0 && !p.llamaOff && p.buf[0] == '{' {
					p.openBlock(bLlama, "")
					continue
				}
			}
			ms := p.markers()
			best, bi := -1, -1
			for k, m := range ms {
				if i := strings.Index(p.buf, m.text); i >= 0 && (bi < 0 || i < bi) {
					if m.text == thinkOpen && i != 0 {
						continue
					}
					best, bi = k, i
				}
			}
			if best >= 0 {
				p.emitContent(p.buf[:bi])
				p.buf = p.buf[bi+len(ms[best].text):]
				ms[best].next(p)
				continue
			}
			keep := 0
			if !final {
				for _, m := range ms {
					keep = max(keep, partialSuffix(p.buf, m.text))
				}
			}
			p.emitContent(p.buf[:len(p.buf)-keep])
			p.buf = p.buf[len(p.buf)-keep:]
			return

		case stBlock:
			if !p.stepBlock(final) {
				return
			}
		}
	}
}

// stepBlock tries to close the current block; it reports whether the
// state changed (so step should go on).
func (p *Parser) stepBlock(final bool) bool {
	var body, rest string
	closed := false
	switch p.blk {
	case bHermes:
		if i := strings.Index(p.buf, toolCallClose); i >= 0 {
			body, rest, closed = p.buf[:i], p.buf[i+len(toolCallClose):], true
		}
	case bFunction:
		if i := strings.Index(p.buf, functionClose); i >= 0 {
			body, rest, closed = p.buf[:i+len(functionClose)], p.buf[i+len(functionClose):], true
			// A wrapper's closing tag right after belongs to the call.
			if t := strings.TrimLeft(rest, " \t\r\n"); strings.HasPrefix(t, toolCallClose) {
				rest = t[len(toolCallClose):]
			}
		}
	case bLlama:
		if n := jsonEnd(p.buf); n > 0 {
			body, rest, closed = p.buf[:n], p.buf[n:], true
			if t := strings.TrimLeft(rest, " \t\r\n"); strings.HasPrefix(t, ";") {
				rest = t[1:]
			}
		}
	}
	if !closed {
		if !final {
			return false
		}
		body, rest = p.buf, ""
	}
	calls, ok := p.parseBlock(body)
	p.buf = rest
	p.st = stContent
	if ok {
		p.emitCalls(calls)
		return true
	}
	// Not a call: the whole block is text.
	if p.blk == bLlama {
		p.llamaOff = true
	}
	text := p.opener + body
	if closed && p.blk == bHermes {
		text += toolCallClose
	}
	if final && !closed {
		p.emitContent(text)
		return true
	}
	// Give it back as content without re-scanning it for markers.
	p.emitContent(text)
	return true
}

func (p *Parser) parseBlock(body string) ([]Call, bool) {
	switch p.blk {
	case bHermes:
		t := strings.TrimSpace(body)
		if strings.HasPrefix(t, functionOpen) {
			return parseXMLCalls(t, p.cfg.ParamTypes)
		}
		c, ok := parseJSONCall(t)
		if !ok {
			return nil, false
		}
		return []Call{c}, true
	case bFunction:
		return parseXMLCalls(strings.TrimSpace(body), p.cfg.ParamTypes)
	case bLlama:
		c, ok := parseJSONCall(body)
		if !ok {
			return nil, false
		}
		return []Call{c}, true
	case bPython:
		return parseJSONSeq(body)
	case bMistral:
		return parseMistral(body)
	}
	return nil, false
}

// partialSuffix is the length of the longest proper suffix of s that is a
// prefix of m (text that may become m).
func partialSuffix(s, m string) int {
	n := min(len(s), len(m)-1)
	for k := n; k > 0; k-- {
		if strings.HasSuffix(s, m[:k]) {
			return k
		}
	}
	return 0
}
