package engine

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// feed computes n more positions of s as Model.ForwardBatch does (in
// passes of at most windowPass), appending tokens from tok.
func feed(t *testing.T, p *KVPool, s *Seq, n int, tok func(i int) int32) {
	t.Helper()
	for done := 0; done < n; {
		k := min(n-done, windowPass)
		if err := p.grow(s, s.Len(), s.Len()+k); err != nil {
			t.Fatalf("growing to %d: %v", s.Len()+k, err)
		}
		checkWindowTable(t, p, s, s.Len(), s.Len()+k)
		for range k {
			s.Tokens = append(s.Tokens, tok(s.Len()))
		}
		done += k
	}
}

// checkWindowTable checks that s holds exactly the window blocks a pass
// over positions from..to-1 reads, and no more than a sequence may.
func checkWindowTable(t *testing.T, p *KVPool, s *Seq, from, to int) {
	t.Helper()
	lo := p.winFirst(from)
	if len(s.WinBlocks) != p.blocksFor(to) {
		t.Fatalf("positions to %d: %d window blocks in the table, want %d", to, len(s.WinBlocks), p.blocksFor(to))
	}
	held := 0
	for i, b := range s.WinBlocks {
		switch {
		case i < lo && b != -1:
			t.Fatalf("from %d: window block %d (positions %d..) still held, the window starts at %d", from, i, i*p.bs, from-p.window+1)
		case i >= lo && (b < 0 || p.w.ref[b] == 0):
			t.Fatalf("from %d: window block %d (positions %d..) not held", from, i, i*p.bs)
		case b >= 0:
			held++
		}
	}
	if held > p.winPer {
		t.Fatalf("from %d: %d window blocks held, a sequence holds at most %d", from, held, p.winPer)
	}
}

func seqTok(i int) int32 { return int32(1 + i%97) }

func otherTok(i int) int32 { return int32(200 + i%13) }

func prompt(n int, tok func(int) int32) []int32 {
	out := make([]int32, n)
	for i := range out {
		out[i] = tok(i)
	}
	return out
}

// A sequence returns its window blocks as it moves past them: after
// hundreds of positions it holds only those of its last window, in one
// pass at a time or one position at a time.
func TestKVPoolWindowSlides(t *testing.T) {
	p := NewWindowKVPool(32, 20, 16, 16, 512, 2)
	if p.winPer != 7 {
		t.Fatalf("%d window blocks per sequence, want 7", p.winPer)
	}
	s, cached, err := p.Start(prompt(150, seqTok), nil)
	if err != nil || cached != 0 {
		t.Fatalf("start: cached %d, %v", cached, err)
	}
	if len(s.Blocks) != 10 || len(s.WinBlocks) != 0 {
		t.Fatalf("a started prompt of 150 holds %d blocks and %d window blocks, want 10 and none yet", len(s.Blocks), len(s.WinBlocks))
	}
	feed(t, p, s, 150, seqTok) // three passes
	for range 200 {
		feed(t, p, s, 1, seqTok) // decode
	}
	// computing from 350 reads positions 335.. (blocks 20 and 21)
	if err := p.Grow(s, 351); err != nil {
		t.Fatal(err)
	}
	checkWindowTable(t, p, s, 350, 351)
	if got, want := p.FreeWindowBlocks(), 20-2; got != want {
		t.Errorf("%d window blocks free at position 350, want %d", got, want)
	}
	if got, want := p.FreeBlocks(), 32-22; got != want {
		t.Errorf("%d blocks free at position 350, want %d: the global layers keep every position", got, want)
	}
	// a finished sequence keeps its last window only
	p.Finish(s, true)
	if got := p.FreeWindowBlocks(); got != 18 {
		t.Errorf("%d window blocks free with the sequence cached, want 18", got)
	}
	p.DropCache()
	if p.FreeBlocks() != p.Blocks() || p.FreeWindowBlocks() != p.WindowBlocks() {
		t.Errorf("at the end %d of %d blocks and %d of %d window blocks free", p.FreeBlocks(), p.Blocks(), p.FreeWindowBlocks(), p.WindowBlocks())
	}
}

// Prefix reuse with a window: whole window blocks of the window before
// the prefix's end are shared, the partial one copied in the window
// space; a donor whose window has moved past the common prefix lends
// nothing.
func TestKVPoolWindowPrefixes(t *testing.T) {
	p := NewWindowKVPool(64, 40, 16, 16, 1024, 4)
	a := prompt(100, seqTok)
	s, _, err := p.Start(a, nil)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, p, s, 100, seqTok)
	p.Finish(s, true) // holds window blocks 5 and 6 (positions 80..111)
	if s.winLo != 5 || s.WinBlocks[5] < 0 || s.WinBlocks[6] < 0 {
		t.Fatalf("cached sequence of 100: window table %v", s.WinBlocks)
	}

	// a continuation: 100 positions reused, the window block of 80..95
	// shared, the one of 96..99 copied
	next := append(slices.Clone(a), 5, 6, 7)
	s2, cached, err := p.Start(next, nil)
	if err != nil || cached != 100 {
		t.Fatalf("continuation: cached %d, %v; want 100", cached, err)
	}
	if s2.WinBlocks[5] != s.WinBlocks[5] || p.w.ref[s.WinBlocks[5]] != 2 {
		t.Errorf("window block 5 not shared: %v (donor %v)", s2.WinBlocks, s.WinBlocks)
	}
	if !slices.Equal(s2.WinBlocks[:5], []int32{-1, -1, -1, -1, -1}) || len(s2.WinBlocks) != 7 || s2.WinBlocks[6] == s.WinBlocks[6] {
		t.Errorf("continuation's window table %v, donor's %v", s2.WinBlocks, s.WinBlocks)
	}
	copies := p.takeCopies()
	var win, glob int
	for _, c := range copies {
		if c.n != 4 {
			t.Errorf("copy of %d positions, want 4", c.n)
		}
		if c.win {
			win++
			if c.src != s.WinBlocks[6] || c.dst != s2.WinBlocks[6] {
				t.Errorf("window copy %d -> %d, want %d -> %d", c.src, c.dst, s.WinBlocks[6], s2.WinBlocks[6])
			}
		} else {
			glob++
		}
	}
	if win != 1 || glob != 1 {
		t.Fatalf("%d window and %d global copies, want one each", win, glob)
	}
	p.copied(copies)
	feed(t, p, s2, 3, seqTok)

	// a prompt that parts from the cached one at 50: the donor no longer
	// holds positions 35..49, so nothing is reused
	early := append(slices.Clone(a[:50]), 999, 998)
	s3, cached, err := p.Start(early, nil)
	if err != nil || cached != 0 {
		t.Fatalf("early divergence: cached %d, %v; want 0", cached, err)
	}
	// ... but a shorter donor that still holds its window is taken over a
	// longer one that does not: s2 is running at 103 positions
	p.Finish(s3, false)
	s3, _, _ = p.Start(prompt(40, seqTok), nil)
	feed(t, p, s3, 40, seqTok)
	p.Finish(s3, true)
	s4, cached, err := p.Start(early, []*Seq{s2})
	if err != nil || cached != 40 {
		t.Fatalf("with a short cached donor: cached %d, %v; want 40", cached, err)
	}
	p.copied(p.takeCopies())

	// a longer turn does not evict a cached one whose window it lost
	n := p.Cached()
	feed(t, p, s2, 200, seqTok)
	p.Finish(s2, true)
	if p.Cached() != n+1 {
		t.Errorf("%d cached after finishing a continuation, want %d: the shorter turn's window is not in it", p.Cached(), n+1)
	}
	p.Finish(s4, false)
	p.DropCache()
	if p.FreeBlocks() != p.Blocks() || p.FreeWindowBlocks() != p.WindowBlocks() || len(p.copies) != 0 {
		t.Errorf("at the end %d of %d blocks and %d of %d window blocks free, %d copies pending",
			p.FreeBlocks(), p.Blocks(), p.FreeWindowBlocks(), p.WindowBlocks(), len(p.copies))
	}
}

// Truncating to a position whose window was released is refused and
// changes nothing; within the window, or to 0, it works.
func TestKVPoolWindowTruncate(t *testing.T) {
	p := NewWindowKVPool(32, 20, 16, 16, 512, 2)
	s := &Seq{} // as a Model's slot
	feed(t, p, s, 200, seqTok)
	blocks, win := slices.Clone(s.Blocks), slices.Clone(s.WinBlocks)
	err := p.Truncate(s, 100)
	if err == nil || !strings.Contains(err.Error(), "sliding-window") {
		t.Fatalf("truncating into released window blocks: %v", err)
	}
	if s.Len() != 200 || !slices.Equal(s.Blocks, blocks) || !slices.Equal(s.WinBlocks, win) {
		t.Fatal("a refused truncation changed the sequence")
	}
	// the last pass computed from 192, reading from 177: window blocks
	// from 11 (positions 176..) are held, enough to compute from 195
	if err := p.Truncate(s, 190); err == nil {
		t.Fatal("truncating to 190, whose window starts in released block 10, was allowed")
	}
	if err := p.Truncate(s, 195); err != nil {
		t.Fatal(err)
	}
	feed(t, p, s, 20, seqTok)
	if err := p.Truncate(s, 0); err != nil {
		t.Fatal(err)
	}
	if p.FreeBlocks() != p.Blocks() || p.FreeWindowBlocks() != p.WindowBlocks() {
		t.Errorf("after truncating to 0: %d of %d blocks and %d of %d window blocks free", p.FreeBlocks(), p.Blocks(), p.FreeWindowBlocks(), p.WindowBlocks())
	}
	feed(t, p, s, 50, seqTok) // and it starts over
}

// The window space is admission-controlled: a sequence starts only while
// every running one can still have its window blocks; a cached sequence
// gives its window blocks back to a running one; a sequence growing
// without a start fails cleanly when none is left.
func TestKVPoolWindowFull(t *testing.T) {
	p := NewWindowKVPool(64, 14, 16, 16, 512, 2) // two sequences of 7
	a, _, err := p.Start(prompt(10, seqTok), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := p.Start(prompt(10, otherTok), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.Start([]int32{3, 3}, nil); !errors.Is(err, ErrKVFull) {
		t.Fatalf("third start: %v, want ErrKVFull", err)
	}
	p.Finish(a, false)
	p.Finish(b, false)
	if p.FreeWindowBlocks() != 14 || p.FreeBlocks() != 64 {
		t.Fatalf("%d window blocks and %d blocks free", p.FreeWindowBlocks(), p.FreeBlocks())
	}

	p = NewWindowKVPool(64, 7, 16, 16, 512, 2) // one sequence
	a, _, _ = p.Start(prompt(10, seqTok), nil)
	feed(t, p, a, 300, seqTok)
	p.Finish(a, true) // holds 2 window blocks
	b, _, err = p.Start(prompt(5, otherTok), nil)
	if err != nil {
		t.Fatal(err)
	}
	feed(t, p, b, 5, otherTok)
	feed(t, p, b, 200, otherTok) // a pass from 69 reads 54..132: 6 window blocks
	if p.Cached() != 0 {
		t.Errorf("%d cached, want the cached sequence dropped for its window blocks", p.Cached())
	}
	p.Finish(b, false)
	if p.FreeWindowBlocks() != 7 || p.FreeBlocks() != 64 {
		t.Fatalf("%d window blocks and %d blocks free", p.FreeWindowBlocks(), p.FreeBlocks())
	}

	// sequences addressed by index (a Model's slots) are not admitted:
	// growth fails with ErrKVFull when the space is spent
	q := NewWindowKVPool(64, 3, 16, 16, 512, 0)
	s := &Seq{}
	if err := q.Grow(s, 48); err != nil {
		t.Fatal(err)
	}
	err = q.Grow(s, 49)
	if !errors.Is(err, ErrKVFull) || !strings.Contains(err.Error(), "sliding-window") {
		t.Fatalf("growing past the window space: %v", err)
	}
	if len(s.WinBlocks) != 3 {
		t.Errorf("a failed grow left %d window blocks", len(s.WinBlocks))
	}
}
