// Package metrics is the layout of rpcd's shared counters: one region of
// memory, shared by the master and its workers as nginx shares its
// counters, that outlives any worker.
//
// # Layout
//
// A region is a header, the method table, then counter sets of one size:
// one set of totals per worker slot, then one block per running worker.
// The master creates the region (Create), assigns each worker a block at
// spawn, and folds a block into its slot's totals (Fold) once the worker
// has been reaped, whatever it died of; the block is then zeroed for the
// next worker. Counters therefore only grow, across crashes, reloads and
// upgrades: the master hands the region over with its sockets, and the
// totals live in it.
//
// A set counts, per method row (the region's methods, then one row for
// any other name) and answer code, requests and a histogram of their
// durations, plus connection and byte counters and three gauges. The
// master's own counters (workers started and exited, missed heartbeats,
// reloads and upgrades) sit in the header.
//
// # Writers and readers
//
// A block has one writer, its worker's event loop, which counts into a
// Recorder in its own memory and publishes the changed words to the block
// with atomic stores once per loop turn (Recorder.Publish): the hot path
// makes no atomic operation and no allocation. Readers (the master at
// scrape time) load words atomically; a scrape may see one loop turn's
// counts partly published, never a count that goes back.
//
// The region is plain memory: this package makes no system call but in
// Create and Open, which map a memfd.
package metrics
