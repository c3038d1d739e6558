package loadtest

import (
	"math/rand/v2"
	"strings"
)

// words are common English words; in the tokenizers of current models
// nearly each of them, after a space, is one token.
var words = strings.Fields(`
the of and to in is was for on that with as by at from his her they this
are had not but have were which one all their there been has when who will
more no if out so said what up its about into than them can only other new
some could time these two may then do first any my now such like our over
man me even most made after also did many before must through back years
where much your way well down should because each just those people how too
little state good very make world still own see men work long get here
between both life being under never day same another know while last might
us great old year off come since against go came right used take three
house water room city river light point place small large hand part child
eye side week case number group problem fact night story money book word
family garden table window door road letter field paper music friend
school market bridge island morning evening summer winter spring autumn
mountain forest stone bread apple orange horse bird fish cloud rain snow
wind fire sea ship train station village country colour picture voice
answer question reason moment minute hour future history science nature
simple quiet bright early late happy strong warm cold green blue red white
black open close carry follow bring write read speak listen watch walk
run build grow begin finish travel remember wonder learn teach change
`)

// promptText is n words drawn from words.
func promptText(rng *rand.Rand, n int) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(words[rng.IntN(len(words))])
	}
	return b.String()
}
