package cmd

import (
	"os"
	"os/signal"

	"github.com/rpcd/rpcd/master"
)

// catchMasterSignals starts catching the master's signals when this process
// is to be the master, before it reads its configuration file or binds: a
// SIGHUP or SIGTERM then waits for the master to act on it instead of
// killing the process. It returns the channel (nil for any other role) and
// what stops catching.
func catchMasterSignals(opts *options) (chan os.Signal, func()) {
	_, worker := os.LookupEnv(master.WorkerSlotEnv)
	if worker || opts.test || opts.signal != "" || opts.healthCheck {
		return nil, func() {}
	}
	sigs := master.CatchSignals()
	return sigs, func() { signal.Stop(sigs) }
}
