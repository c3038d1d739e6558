//go:build race

package tokenizer

// raceEnabled is true when the race detector is on; heavy duplicate loads
// are skipped then.
const raceEnabled = true
