//go:build race

package checkpoint

// raceSlowdown scales the time bounds of the hostile-input tests: the race
// detector makes the pickle scan several times slower.
const raceSlowdown = 4
