//go:build race

package tools

// gpucheckRace shrinks gpucheck's tests under the race detector.
const gpucheckRace = true
