//go:build race

package cache

// raceEnabled: the race detector drops sync.Pool items at random, so
// encoding/json.Valid, which pools its scanner, allocates now and then.
const raceEnabled = true
