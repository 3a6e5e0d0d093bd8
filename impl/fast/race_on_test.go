//go:build race

package fast_test

// raceEnabled reports whether the race detector is on: it changes how much
// memory things take, so memory targets are checked only without it.
const raceEnabled = true
