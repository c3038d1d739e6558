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
// A model with sliding-window layers (gemma3) can have a second block
// space for them (NewWindowKVPool): those layers read only the last
// window positions, so a sequence returns its window blocks as it moves
// past them and holds at most WindowBlocksPerSeq of them, whatever its
// length. Its table there (Seq.WinBlocks) is indexed like Blocks, with -1
// for the blocks it released.
//
// The pool is bookkeeping only: the backend holds the memory, indexed by
// block id, and Item.Blocks (Item.WinBlocks) tells it where a sequence's
// positions live. Not safe for concurrent use: one goroutine (the
// model's scheduler) owns it.
type KVPool struct {
	bs    int
	g     blockSpace // every layer's blocks, or the global layers' with a window space
	cache []*Seq     // finished sequences kept for prefix reuse, oldest first
	maxC  int        // most cached sequences kept
	// copies are block copies the backend must do before the next
	// forward pass (see Model.Forward); their sources hold a reference
	// until then.
	copies []blockCopy

	// the sliding-window layers' block space; window 0: none
	w      blockSpace
	window int // positions a window layer reads, its own among them
	winPer int // window blocks one sequence holds at most
	live   int // sequences started and not finished (they may claim winPer window blocks each)
}

// blockSpace is one set of blocks: reference counts and free ids.
type blockSpace struct {
	ref  []int32 // per block: sequences holding it (0: free)
	free []int32 // free block ids (a stack)
}

func newBlockSpace(blocks int) blockSpace {
	b := blockSpace{ref: make([]int32, blocks), free: make([]int32, blocks)}
	for i := range b.free {
		b.free[i] = int32(blocks - 1 - i) // low ids first
	}
	return b
}

// drop releases one hold on block id, freeing it when none is left.
func (b *blockSpace) drop(id int32) {
	b.ref[id]--
	if b.ref[id] == 0 {
		b.free = append(b.free, id)
	}
}

// blockCopy is a copy of the first n positions of block src to block
// dst, in the window layers' space when win.
type blockCopy struct {
	dst, src int32
	n        int
	win      bool
}

// Seq is one sequence's place in the pool: its block tables and the
// tokens whose keys and values the blocks hold, from position 0.
type Seq struct {
	Blocks []int32
	// WinBlocks is the sliding-window layers' block table when the pool
	// has a window space (nil otherwise): WinBlocks[i] holds positions
	// [i·BlockSize, (i+1)·BlockSize) of those layers; -1 for blocks
	// released because no position to come reads them (the first winLo).
	WinBlocks []int32
	Tokens    []int32
	// shared is how many leading blocks were shared when the sequence
	// started (in both spaces); they are never written (every write lands
	// at or after the cached prefix, which covers them).
	shared int
	winLo  int  // WinBlocks[:winLo] are released
	live   bool // counted in KVPool.live
	done   bool
}

// Len is the number of positions whose keys and values the sequence holds.
func (s *Seq) Len() int { return len(s.Tokens) }

// NewKVPool makes a pool of blocks blocks of blockSize positions. At most
// maxCached finished sequences are kept for prefix reuse.
func NewKVPool(blocks, blockSize, maxCached int) *KVPool {
	return &KVPool{bs: blockSize, g: newBlockSpace(blocks), maxC: max(maxCached, 0)}
}

// NewWindowKVPool makes a pool like NewKVPool with a second space of
// winBlocks blocks for the keys and values of sliding-window layers,
// which read only the last window positions (window > 0), for sequences
// of up to nCtx positions.
func NewWindowKVPool(blocks, winBlocks, blockSize, window, nCtx, maxCached int) *KVPool {
	p := NewKVPool(blocks, blockSize, maxCached)
	p.w, p.window = newBlockSpace(winBlocks), window
	p.winPer = WindowBlocksPerSeq(window, blockSize, nCtx)
	return p
}

// windowPass is the most positions a sequence computes in one runner
// pass when its model has a window space (Model.ForwardBatch splits
// longer items): it bounds the window blocks a sequence holds at once.
const windowPass = maxBatch

// WindowBlocksPerSeq is the most window blocks of blockSize positions a
// sequence of up to nCtx positions holds at once for layers with a
// sliding window of window positions: those of the window-1 positions
// before a pass and the windowPass positions of the pass, one more for a
// window not aligned to blocks (at most the blocks of the whole
// context), and one for the source of a pending prefix copy.
func WindowBlocksPerSeq(window, blockSize, nCtx int) int {
	n := min((window-1+windowPass+blockSize-1)/blockSize+1, (nCtx+blockSize-1)/blockSize)
	return n + 1
}

// BlockSize is the number of positions a block holds.
func (p *KVPool) BlockSize() int { return p.bs }

// Blocks is the pool's size in blocks.
func (p *KVPool) Blocks() int { return len(p.g.ref) }

// FreeBlocks is the number of blocks no sequence holds.
func (p *KVPool) FreeBlocks() int { return len(p.g.free) }

// Window is the sliding window of the pool's window space; 0 when it has
// none.
func (p *KVPool) Window() int { return p.window }

// WindowBlocks is the size of the window space in blocks (0: none).
func (p *KVPool) WindowBlocks() int { return len(p.w.ref) }

// FreeWindowBlocks is the number of window blocks no sequence holds.
func (p *KVPool) FreeWindowBlocks() int { return len(p.w.free) }

// Cached is the number of finished sequences kept for prefix reuse.
func (p *KVPool) Cached() int { return len(p.cache) }

// blocksFor is the number of blocks n positions need.
func (p *KVPool) blocksFor(n int) int { return (n + p.bs - 1) / p.bs }

// winFirst is the first window block a sequence computing from position
// n reads: the block of position n-window+1. (The attention kernels
// round their first key down to a multiple of sixteen, which stays in
// that block: block sizes are multiples of sixteen.)
func (p *KVPool) winFirst(n int) int { return max(0, n-p.window+1) / p.bs }

// winHolds reports whether s still holds the window blocks a sequence
// computing from position n reads (always without a window space).
func (p *KVPool) winHolds(s *Seq, n int) bool {
	return p.window == 0 || n == 0 || p.winFirst(n) >= s.winLo
}

// Start begins a sequence for prompt. It reuses the longest prefix that a
// cached or running sequence (others) holds, at most len(prompt)-1
// tokens so that the last prompt token is computed for its logits, and
// takes the blocks the whole prompt needs. With a window space, a prefix
// is reused only from a sequence that still holds the window blocks
// before its end; the window blocks are taken as the prompt is computed
// (Grow). It returns the sequence with that prefix in place and the
// prefix's length; it fails with ErrKVFull, holding nothing, when the
// blocks cannot be had.
func (p *KVPool) Start(prompt []int32, others []*Seq) (*Seq, int, error) {
	if len(prompt) == 0 {
		return nil, 0, errors.New("starting a sequence: empty prompt")
	}
	if p.window > 0 && (p.live+1)*p.winPer > len(p.w.ref) {
		return nil, 0, fmt.Errorf("%w: the sliding-window layers' cache of %d blocks holds %d running sequences", ErrKVFull, len(p.w.ref), p.live)
	}
	// The donor: the sequence sharing the longest usable prefix.
	var donor *Seq
	best := 0
	consider := func(s *Seq) {
		if n := min(commonPrefix(s.Tokens, prompt), len(prompt)-1); n > best && p.winHolds(s, n) {
			donor, best = s, n
		}
	}
	for _, s := range p.cache {
		consider(s)
	}
	for _, s := range others {
		consider(s)
	}
	full := best / p.bs
	rem := best - full*p.bs
	s := &Seq{Blocks: make([]int32, 0, p.blocksFor(len(prompt))+1), Tokens: make([]int32, 0, len(prompt)+p.bs)}
	src, wsrc := int32(-1), int32(-1)
	if p.window > 0 {
		s.WinBlocks = make([]int32, 0, p.blocksFor(len(prompt))+1)
		s.winLo = p.winFirst(best)
		for range s.winLo {
			s.WinBlocks = append(s.WinBlocks, -1)
		}
	}
	if donor != nil {
		// Hold the donor's blocks first, so that dropping cached
		// sequences below cannot free them.
		for _, b := range donor.Blocks[:full] {
			p.g.ref[b]++
		}
		s.Blocks = append(s.Blocks, donor.Blocks[:full]...)
		s.shared = full
		if rem > 0 {
			src = donor.Blocks[full]
			p.g.ref[src]++
		}
		if p.window > 0 {
			for _, b := range donor.WinBlocks[s.winLo:full] {
				p.w.ref[b]++
			}
			s.WinBlocks = append(s.WinBlocks, donor.WinBlocks[s.winLo:full]...)
			if rem > 0 {
				wsrc = donor.WinBlocks[full]
				p.w.ref[wsrc]++
			}
		}
		s.Tokens = append(s.Tokens, prompt[:best]...)
	}
	fail := func() (*Seq, int, error) {
		p.release(s)
		if src >= 0 {
			p.g.drop(src)
		}
		if wsrc >= 0 {
			p.w.drop(wsrc)
		}
		return nil, 0, fmt.Errorf("%w: the prompt needs %d blocks of %d positions, the pool has %d", ErrKVFull, p.blocksFor(len(prompt)), p.bs, len(p.g.ref))
	}
	for len(s.Blocks) < p.blocksFor(len(prompt)) {
		b, ok := p.alloc(&p.g)
		if !ok {
			return fail()
		}
		s.Blocks = append(s.Blocks, b)
	}
	if wsrc >= 0 {
		// the window block the copy lands in
		b, ok := p.alloc(&p.w)
		if !ok {
			return fail()
		}
		s.WinBlocks = append(s.WinBlocks, b)
		p.copies = append(p.copies, blockCopy{dst: b, src: wsrc, n: rem, win: true})
	}
	if src >= 0 {
		// the partly filled block at the end of the prefix is copied
		p.copies = append(p.copies, blockCopy{dst: s.Blocks[full], src: src, n: rem})
	}
	if p.window > 0 {
		s.live = true
		p.live++
	}
	return s, best, nil
}

// Grow makes room for s to hold n positions, drawing blocks (and
// dropping cached sequences, oldest first, when none is free). It fails
// with ErrKVFull, keeping what s has, when the pool cannot give them.
// With a window space it first returns the window blocks no position
// from s.Len() on reads.
func (p *KVPool) Grow(s *Seq, n int) error { return p.grow(s, s.Len(), n) }

// grow is Grow for s computing positions from..n-1 (from >= s.Len():
// Model.ForwardBatch runs a long item in several passes).
func (p *KVPool) grow(s *Seq, from, n int) error {
	for len(s.Blocks) < p.blocksFor(n) {
		b, ok := p.alloc(&p.g)
		if !ok {
			return fmt.Errorf("%w: a sequence of %d positions needs %d blocks of %d", ErrKVFull, n, p.blocksFor(n), p.bs)
		}
		s.Blocks = append(s.Blocks, b)
	}
	if p.window == 0 {
		return nil
	}
	p.slide(s, from)
	for len(s.WinBlocks) < p.blocksFor(n) {
		b, ok := p.alloc(&p.w)
		if !ok {
			return fmt.Errorf("%w: the sliding-window layers' cache has no free block (%d blocks of %d)", ErrKVFull, len(p.w.ref), p.bs)
		}
		s.WinBlocks = append(s.WinBlocks, b)
	}
	return nil
}

// slide returns the window blocks of s that a sequence computing from
// position n does not read.
func (p *KVPool) slide(s *Seq, n int) {
	lo := min(p.winFirst(n), len(s.WinBlocks))
	for i := s.winLo; i < lo; i++ {
		p.w.drop(s.WinBlocks[i])
		s.WinBlocks[i] = -1
	}
	s.winLo = max(s.winLo, lo)
}

// Truncate drops s's positions from n on, returning the blocks past them.
// Shared blocks are never written: truncating into them is refused, as
// is truncating to a position whose window the sliding-window layers'
// cache no longer holds.
func (p *KVPool) Truncate(s *Seq, n int) error {
	if n < 0 || n > len(s.Tokens) {
		return fmt.Errorf("truncating a sequence of %d positions to %d", len(s.Tokens), n)
	}
	if n < s.shared*p.bs {
		return fmt.Errorf("truncating a sequence to %d positions would write into its %d shared blocks", n, s.shared)
	}
	if !p.winHolds(s, n) {
		return fmt.Errorf("truncating a sequence of %d positions to %d: its sliding-window layers released positions before %d (the window is %d)",
			len(s.Tokens), n, s.winLo*p.bs, p.window)
	}
	keep := p.blocksFor(n)
	for _, b := range s.Blocks[keep:] {
		p.g.drop(b)
	}
	s.Blocks = s.Blocks[:keep]
	if keep < len(s.WinBlocks) {
		for _, b := range s.WinBlocks[keep:] {
			if b >= 0 {
				p.w.drop(b)
			}
		}
		s.WinBlocks = s.WinBlocks[:keep]
		s.winLo = min(s.winLo, keep)
	}
	s.Tokens = s.Tokens[:n]
	return nil
}

// Finish ends s. With keep, it is cached for prefix reuse (the oldest
// cached sequences are dropped beyond the pool's limit, as is any cached
// sequence whose tokens s's extend and whose window s still holds);
// otherwise its blocks are returned. A cached sequence keeps only the
// window blocks its continuation reads.
func (p *KVPool) Finish(s *Seq, keep bool) {
	if s == nil || s.done {
		return
	}
	s.done = true
	if s.live {
		s.live = false
		p.live--
	}
	if !keep || p.maxC == 0 || len(s.Tokens) == 0 {
		p.release(s)
		return
	}
	// Trim blocks past the tokens held (grown for positions never written).
	if err := p.Truncate(s, len(s.Tokens)); err != nil {
		p.release(s)
		return
	}
	if p.window > 0 {
		p.slide(s, len(s.Tokens))
	}
	kept := p.cache[:0]
	for _, c := range p.cache {
		if commonPrefix(c.Tokens, s.Tokens) == len(c.Tokens) && p.winHolds(s, len(c.Tokens)) {
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
		p.space(c.win).drop(c.src)
	}
}

func (p *KVPool) space(win bool) *blockSpace {
	if win {
		return &p.w
	}
	return &p.g
}

// alloc takes a free block of space sp, dropping cached sequences
// (oldest first) until one is free.
func (p *KVPool) alloc(sp *blockSpace) (int32, bool) {
	for len(sp.free) == 0 && len(p.cache) > 0 {
		p.release(p.cache[0])
		p.cache = p.cache[1:]
	}
	if len(sp.free) == 0 {
		return 0, false
	}
	b := sp.free[len(sp.free)-1]
	sp.free = sp.free[:len(sp.free)-1]
	sp.ref[b] = 1
	return b, true
}

// release drops s's hold on its blocks, and the copies still pending
// into them.
func (p *KVPool) release(s *Seq) {
	if len(p.copies) > 0 {
		kept := p.copies[:0]
		for _, c := range p.copies {
			table := s.Blocks
			if c.win {
				table = s.WinBlocks
			}
			if slices.Contains(table, c.dst) {
				p.space(c.win).drop(c.src)
				continue
			}
			kept = append(kept, c)
		}
		p.copies = kept
	}
	for _, b := range s.Blocks {
		p.g.drop(b)
	}
	for _, b := range s.WinBlocks {
		if b >= 0 {
			p.w.drop(b)
		}
	}
	s.Blocks = s.Blocks[:0]
	if s.WinBlocks != nil {
		s.WinBlocks = s.WinBlocks[:0]
	}
	s.Tokens = s.Tokens[:0]
	s.shared, s.winLo = 0, 0
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
