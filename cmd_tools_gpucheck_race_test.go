//go:build race

package main

// gpucheckRace shrinks gpucheck's tests under the race detector.
const gpucheckRace = true
