//go:build race

package preprocess

// raceSlowdown scales time bounds for the race detector's slowdown.
const raceSlowdown = 20
