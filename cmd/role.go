//go:build linux

package cmd

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/rpcd/rpcd/master"
)

// role is what this process is, as its environment says: a worker started
// by a master (master.WorkerSlotEnv set), or else the master or one of the
// commands (-t, -s, -check, -version). Run reads it once, first.
type role struct {
	worker bool
	slot   int
	// args are a worker's settings from its master (workerArgsEnv), parsed
	// before its own command line, which a master leaves empty.
	args []string
}

// workerArgsEnv names the variable in which a worker gets its settings
// from the master, as a JSON array of "-name=value" strings. The
// environment of a process is readable by its owner only, where its command
// line is readable by every user, and the settings may hold a password.
const workerArgsEnv = "RPCD_WORKER_ARGS"

// currentRole reads this process's role from its environment.
func currentRole() (role, error) {
	slot, ok := os.LookupEnv(master.WorkerSlotEnv)
	if !ok {
		return role{}, nil
	}
	r := role{worker: true}
	r.slot, _ = strconv.Atoi(slot) // the master sets it
	if enc, ok := os.LookupEnv(workerArgsEnv); ok {
		if err := json.Unmarshal([]byte(enc), &r.args); err != nil {
			return role{}, fmt.Errorf("read %s: %w", workerArgsEnv, err)
		}
	}
	return r, nil
}

// workerTraceback is the GOTRACEBACK a worker runs with, unless the master's
// own asks for as much or more: when the master's watchdog sends a hung
// worker SIGABRT, the Go runtime then writes every goroutine's stack to the
// worker's stderr, without a core file.
const workerTraceback = "all"

// workerEnv is the environment workers start with: the master's own,
// without the service manager's socket (only the master speaks for the
// service), with GOTRACEBACK at least workerTraceback, and with args in
// workerArgsEnv.
func workerEnv(args []string) []string {
	var env []string
	traceback := workerTraceback
	for _, kv := range os.Environ() {
		name, val, _ := strings.Cut(kv, "=")
		switch name {
		case notifySocketEnv, workerArgsEnv:
		case "GOTRACEBACK":
			if val == "system" || val == "crash" {
				traceback = val
			}
		default:
			env = append(env, kv)
		}
	}
	enc, _ := json.Marshal(args) // a []string always encodes
	return append(env, "GOTRACEBACK="+traceback, workerArgsEnv+"="+string(enc))
}
