package grammar

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// normalise sorts and merges ranges, and complements them when neg.
// Surrogates are never part of the result.
func normalise(rs []runeRange, neg bool) []runeRange {
	rs = slices.Clone(rs)
	slices.SortFunc(rs, func(a, b runeRange) int { return int(a.lo - b.lo) })
	var out []runeRange
	for _, r := range rs {
		if n := len(out); n > 0 && r.lo <= out[n-1].hi+1 {
			out[n-1].hi = max(out[n-1].hi, r.hi)
			continue
		}
		out = append(out, r)
	}
	if neg {
		var c []runeRange
		next := rune(0)
		for _, r := range out {
			if r.lo > next {
				c = append(c, runeRange{next, r.lo - 1})
			}
			next = r.hi + 1
		}
		if next <= utf8.MaxRune {
			c = append(c, runeRange{next, utf8.MaxRune})
		}
		out = c
	}
	// Cut out the surrogates.
	var res []runeRange
	for _, r := range out {
		if r.hi < 0xD800 || r.lo > 0xDFFF {
			res = append(res, r)
			continue
		}
		if r.lo < 0xD800 {
			res = append(res, runeRange{r.lo, 0xD7FF})
		}
		if r.hi > 0xDFFF {
			res = append(res, runeRange{0xE000, r.hi})
		}
	}
	return res
}

// byteRange is one position of a UTF-8 byte-range sequence.
type byteRange struct{ lo, hi byte }

// utf8Seqs splits a code point range into sequences of byte ranges whose
// concatenations encode exactly that range.
func utf8Seqs(lo, hi rune, out [][]byteRange) [][]byteRange {
	bounds := []rune{0x7F, 0x7FF, 0xFFFF, utf8.MaxRune}
	for _, b := range bounds {
		if lo <= b && hi > b {
			out = utf8Seqs(lo, b, out)
			return utf8Seqs(b+1, hi, out)
		}
	}
	n := utf8.RuneLen(lo)
	for i := 1; i < n; i++ {
		m := rune(1)<<(6*i) - 1
		if lo&^m != hi&^m {
			if lo&m != 0 {
				out = utf8Seqs(lo, lo|m, out)
				return utf8Seqs((lo|m)+1, hi, out)
			}
			if hi&m != m {
				out = utf8Seqs(lo, hi&^m-1, out)
				return utf8Seqs(hi&^m, hi, out)
			}
		}
	}
	var a, b [4]byte
	utf8.EncodeRune(a[:], lo)
	utf8.EncodeRune(b[:], hi)
	seq := make([]byteRange, n)
	for i := range n {
		seq[i] = byteRange{a[i], b[i]}
	}
	return append(out, seq)
}

// classSym turns a code point class into one element: a byte set when it
// is ASCII only, else a generated rule over its UTF-8 sequences.
func (p *parser) classSym(rs []runeRange, neg bool) sym {
	rs = normalise(rs, neg)
	key := fmt.Sprint("class:", rs)
	if s, ok := p.classSyms[key]; ok {
		return s
	}
	var seqs [][]byteRange
	for _, r := range rs {
		seqs = utf8Seqs(r.lo, r.hi, seqs)
	}
	// One alternative per distinct prefix: sequences that differ only in
	// their first byte are merged into one set where possible.
	var ascii byteSet
	var alts [][]sym
	for _, s := range seqs {
		if len(s) == 1 {
			ascii.add(s[0].lo, s[0].hi)
			continue
		}
		alt := make([]sym, len(s))
		for i, br := range s {
			alt[i] = p.setSym(br.lo, br.hi)
		}
		alts = append(alts, alt)
	}
	if len(alts) == 0 {
		s := p.internSet(ascii)
		p.classSyms[key] = s
		return s
	}
	if ascii != (byteSet{}) {
		alts = append([][]sym{{p.internSet(ascii)}}, alts...)
	}
	s := sym{kind: kRef, arg: p.newRule("class", alts)}
	p.classSyms[key] = s
	return s
}
