package node

import "sync"

// slotPool hands out a model's KV slots. Each running request owns one
// slot; a slot keeps the tokens whose K/V it holds after its request
// ends, so a later request sharing a prefix (the next turn of a
// conversation) reuses it. Safe for concurrent use.
type slotPool struct {
	mu    sync.Mutex
	slots []slotState
	clock uint64
}

type slotState struct {
	busy     bool
	tokens   []int32 // tokens whose K/V are in the slot, from position 0
	lastUsed uint64
}

func newSlotPool(n int) *slotPool {
	return &slotPool{slots: make([]slotState, n)}
}

// take picks a free slot for prompt: the one sharing the longest prefix
// with it, else the least recently used. It returns the slot and how many
// leading prompt tokens are already in its cache (at most len(prompt)-1,
// so that the last prompt token is always computed for its logits). ok
// is false when every slot is busy (admission prevents that).
func (p *slotPool) take(prompt []int32) (slot, cached int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	slot = -1
	for i := range p.slots {
		s := &p.slots[i]
		if s.busy {
			continue
		}
		n := commonPrefix(s.tokens, prompt)
		if slot < 0 || n > cached || (n == cached && s.lastUsed < p.slots[slot].lastUsed) {
			slot, cached = i, n
		}
	}
	if slot < 0 {
		return 0, 0, false
	}
	if cached >= len(prompt) {
		cached = len(prompt) - 1
	}
	cached = max(cached, 0)
	s := &p.slots[slot]
	s.busy = true
	s.tokens = s.tokens[:cached]
	return slot, cached, true
}

// give returns a slot whose cache now holds tokens (positions 0..).
func (p *slotPool) give(slot int, tokens []int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clock++
	s := &p.slots[slot]
	s.busy = false
	s.lastUsed = p.clock
	s.tokens = append(s.tokens[:0], tokens...)
}

func commonPrefix(a, b []int32) int {
	n := min(len(a), len(b))
	for i := range n {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}
