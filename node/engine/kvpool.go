package engine

import (
	"errors"
	"fmt"
	"slices"
)

// ErrKVFull is returned when the KV pool has no free block for a
// sequence that grows, even after dropping every cached sequence.
var ErrKVFull = errors.New("the KV cache pool is full")

// KVPool hands out a model's KV cache in blocks of BlockSize positions.
// Sequences draw blocks as they grow and return them when they end; a
// finished sequence can stay cached, so that a later prompt sharing its
// prefix (the next turn of a conversation, or another request with the
// same system prompt) reuses its keys and values: whole blocks are shared
// (read-only, reference-counted), the partly filled block at the end of
// the common prefix is copied.
//
// The pool is bookkeeping only: the backend holds the memory, indexed by
// block id, and Item.Blocks tells it where a sequence's positions live.
// Not safe for concurrent use: one goroutine (the model's scheduler)
// owns it.
type KVPool struct {
	bs    int
	ref   []int32 // per block: sequences holding it (0: free)
	free  []int32 // free block ids (a stack)
	cache []*Seq  // finished sequences kept for prefix reuse, oldest first
	maxC  int     // most cached sequences kept
	// copies are block copies the backend must do before the next
	// forward pass (see Model.Forward); their sources hold a reference
	// until then.
	copies []blockCopy
}

type blockCopy struct {
	dst, src int32
	n        int
}

// Seq is one sequence's place in the pool: its block table and the
// tokens whose keys and values the blocks hold, from position 0.
type Seq struct {
	Blocks []int32
	Tokens []int32
	// shared is how many leading blocks were shared when the sequence
	// started; they are never written (every write lands at or after the
	// cached prefix, which covers them).
	shared int
	done   bool
}

// Len is the number of positions whose keys and values the sequence holds.
func (s *Seq) Len() int { return len(s.Tokens) }

// NewKVPool makes a pool of blocks blocks of blockSize positions. At most
// maxCached finished sequences are kept for prefix reuse.
func NewKVPool(blocks, blockSize, maxCached int) *KVPool {
	p := &KVPool{bs: blockSize, ref: make([]int32, blocks), free: make([]int32, blocks), maxC: max(maxCached, 0)}
	for i := range p.free {
		p.free[i] = int32(blocks - 1 - i) // low ids first
	}
	return p
}

// BlockSize is the number of positions a block holds.
func (p *KVPool) BlockSize() int { return p.bs }

// Blocks is the pool's size in blocks.
func (p *KVPool) Blocks() int { return len(p.ref) }

// FreeBlocks is the number of blocks no sequence holds.
func (p *KVPool) FreeBlocks() int { return len(p.free) }

// Cached is the number of finished sequences kept for prefix reuse.
func (p *KVPool) Cached() int { return len(p.cache) }

// blocksFor is the number of blocks n positions need.
func (p *KVPool) blocksFor(n int) int { return (n + p.bs - 1) / p.bs }

// Start begins a sequence for prompt. It reuses the longest prefix that a
// cached or running sequence (others) holds, at most len(prompt)-1
// tokens so that the last prompt token is computed for its logits, and
// takes the blocks the whole prompt needs. It returns the sequence with
// that prefix in place and the prefix's length; it fails with ErrKVFull,
// holding nothing, when the blocks cannot be had.
func (p *KVPool) Start(prompt []int32, others []*Seq) (*Seq, int, error) {
	if len(prompt) == 0 {
		return nil, 0, errors.New("starting a sequence: empty prompt")
	}
	// The donor: the sequence sharing the longest prefix.
	var donor *Seq
	best := 0
	consider := func(s *Seq) {
		if n := commonPrefix(s.Tokens, prompt); n > best {
			donor, best = s, n
		}
	}
	for _, s := range p.cache {
		consider(s)
	}
	for _, s := range others {
		consider(s)
	}
	best = min(best, len(prompt)-1)
	full := best / p.bs
	rem := best - full*p.bs
	s := &Seq{Blocks: make([]int32, 0, p.blocksFor(len(prompt))+1), Tokens: make([]int32, 0, len(prompt)+p.bs)}
	src := int32(-1)
	if donor != nil {
		// Hold the donor's blocks first, so that dropping cached
		// sequences below cannot free them.
		for _, b := range donor.Blocks[:full] {
			p.ref[b]++
		}
		s.Blocks = append(s.Blocks, donor.Blocks[:full]...)
		s.shared = full
		if rem > 0 {
			src = donor.Blocks[full]
			p.ref[src]++
		}
		s.Tokens = append(s.Tokens, prompt[:best]...)
	}
	fail := func() (*Seq, int, error) {
		p.release(s)
		if src >= 0 {
			p.ref[src]--
			p.freeIfUnused(src)
		}
		return nil, 0, fmt.Errorf("%w: the prompt needs %d blocks of %d positions, the pool has %d", ErrKVFull, p.blocksFor(len(prompt)), p.bs, len(p.ref))
	}
	for len(s.Blocks) < p.blocksFor(len(prompt)) {
		b, ok := p.alloc()
		if !ok {
			return fail()
		}
		s.Blocks = append(s.Blocks, b)
	}
	if src >= 0 {
		// the partly filled block at the end of the prefix is copied
		p.copies = append(p.copies, blockCopy{dst: s.Blocks[full], src: src, n: rem})
	}
	return s, best, nil
}

// Grow makes room for s to hold n positions, drawing blocks (and
// dropping cached sequences, oldest first, when none is free). It fails
// with ErrKVFull, keeping what s has, when the pool cannot give them.
func (p *KVPool) Grow(s *Seq, n int) error {
	for len(s.Blocks) < p.blocksFor(n) {
		b, ok := p.alloc()
		if !ok {
			return fmt.Errorf("%w: a sequence of %d positions needs %d blocks of %d", ErrKVFull, n, p.blocksFor(n), p.bs)
		}
		s.Blocks = append(s.Blocks, b)
	}
	return nil
}

// Truncate drops s's positions from n on, returning the blocks past them.
// Shared blocks are never written: truncating into them is refused.
func (p *KVPool) Truncate(s *Seq, n int) error {
	if n < 0 || n > len(s.Tokens) {
		return fmt.Errorf("truncating a sequence of %d positions to %d", len(s.Tokens), n)
	}
	if n < s.shared*p.bs {
		return fmt.Errorf("truncating a sequence to %d positions would write into its %d shared blocks", n, s.shared)
	}
	keep := p.blocksFor(n)
	for _, b := range s.Blocks[keep:] {
		p.ref[b]--
		p.freeIfUnused(b)
	}
	s.Blocks = s.Blocks[:keep]
	s.Tokens = s.Tokens[:n]
	return nil
}

// Finish ends s. With keep, it is cached for prefix reuse (the oldest
// cached sequences are dropped beyond the pool's limit, as is any cached
// sequence whose tokens s's extend); otherwise its blocks are returned.
func (p *KVPool) Finish(s *Seq, keep bool) {
	if s == nil || s.done {
		return
	}
	s.done = true
	if !keep || p.maxC == 0 || len(s.Tokens) == 0 {
		p.release(s)
		return
	}
	// Trim blocks past the tokens held (grown for positions never written).
	if err := p.Truncate(s, len(s.Tokens)); err != nil {
		p.release(s)
		return
	}
	kept := p.cache[:0]
	for _, c := range p.cache {
		if commonPrefix(c.Tokens, s.Tokens) == len(c.Tokens) {
			p.release(c) // s holds everything c did
			continue
		}
		kept = append(kept, c)
	}
	p.cache = append(kept, s)
	for len(p.cache) > p.maxC {
		p.release(p.cache[0])
		p.cache = p.cache[1:]
	}
}

// DropCache forgets every cached sequence.
func (p *KVPool) DropCache() {
	for _, c := range p.cache {
		p.release(c)
	}
	p.cache = p.cache[:0]
}

// takeCopies returns the pending block copies and forgets them; the
// caller does them and then calls copied.
func (p *KVPool) takeCopies() []blockCopy {
	c := p.copies
	p.copies = nil
	return c
}

// copied drops the references the sources of done copies held.
func (p *KVPool) copied(done []blockCopy) {
	for _, c := range done {
		p.ref[c.src]--
		p.freeIfUnused(c.src)
	}
}

// alloc takes a free block, dropping cached sequences (oldest first)
// until one is free.
func (p *KVPool) alloc() (int32, bool) {
	for len(p.free) == 0 && len(p.cache) > 0 {
		p.release(p.cache[0])
		p.cache = p.cache[1:]
	}
	if len(p.free) == 0 {
		return 0, false
	}
	b := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.ref[b] = 1
	return b, true
}

// release drops s's hold on its blocks, and the copies still pending
// into them.
func (p *KVPool) release(s *Seq) {
	if len(p.copies) > 0 {
		kept := p.copies[:0]
		for _, c := range p.copies {
			if slices.Contains(s.Blocks, c.dst) {
				p.ref[c.src]--
				p.freeIfUnused(c.src)
				continue
			}
			kept = append(kept, c)
		}
		p.copies = kept
	}
	for _, b := range s.Blocks {
		p.ref[b]--
		p.freeIfUnused(b)
	}
	s.Blocks = s.Blocks[:0]
	s.Tokens = s.Tokens[:0]
	s.shared = 0
}

func (p *KVPool) freeIfUnused(b int32) {
	if p.ref[b] == 0 {
		p.free = append(p.free, b)
	}
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
