//go:build linux

package cmd

import (
	"flag"
	"fmt"

	"go.uber.org/zap"
)

// An Extension adds settings and a service of each worker process to rpcd,
// beside the methods of its registry: the cache's Redis client is one. Main
// takes any number of them.
type Extension interface {
	// Flags defines the extension's flags on fs and returns what holds
	// their values once fs is parsed. It is called for each resolution of
	// the settings (at start, on each SIGHUP, for -t, in each worker), so
	// its flags are configuration-file keys and reach the workers as the
	// built-in ones do.
	Flags(fs *flag.FlagSet) ExtensionSettings
}

// ExtensionSettings are an extension's share of one resolution of the
// settings.
type ExtensionSettings interface {
	// Check validates the values once the command line and the -config
	// file are applied; an error rejects the settings.
	Check() error
	// Announce is called once in the master when it starts (and in the
	// image an upgrade executes), not on SIGHUP, to log what the values
	// mean for the whole server. The master never starts the service
	// itself.
	Announce(log *zap.Logger)
	// Start starts the service in a worker process before it serves, and
	// returns what stops it once the worker has stopped. An error stops
	// the worker.
	Start(w WorkerInfo) (stop func(), err error)
}

// WorkerInfo is what an extension learns of the worker process it starts
// in.
type WorkerInfo struct {
	Slot int
	// PoolSize is the number of goroutines running blocking methods:
	// -pool-size, or the CPUs this process may use when that is 0.
	PoolSize int
	Log      *zap.Logger
}

// startExtensions starts every extension's service in this worker and
// returns what stops the started ones, last first. If one fails, those
// already started are stopped.
func startExtensions(exts []ExtensionSettings, w WorkerInfo) (stop func(), err error) {
	var stops []func()
	stop = func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	for _, e := range exts {
		s, err := e.Start(w)
		if err != nil {
			stop()
			return nil, fmt.Errorf("start extension %T: %w", e, err)
		}
		stops = append(stops, s)
	}
	return stop, nil
}
