//go:build linux

package cmd

import (
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

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

// Workers run with GOTRACEBACK=crash: when the master's watchdog sends a
// hung worker SIGABRT, the Go runtime has every thread write the stack of
// the goroutine it runs (with "all", a goroutine spinning on a thread other
// than the one the signal reached is "stack unavailable"). crash ends in a
// core dump, which a worker turns off (noCoreEnv) unless the master itself
// runs with GOTRACEBACK=crash, asking for one.
const (
	workerTraceback = "crash"
	noCoreEnv       = "RPCD_WORKER_NO_CORE"
)

// workerEnv is the environment workers start with: the master's own,
// without the service manager's socket (only the master speaks for the
// service), with GOTRACEBACK=workerTraceback, and with args in
// workerArgsEnv.
func workerEnv(args []string) []string {
	var env []string
	noCore := true
	for _, kv := range os.Environ() {
		name, val, _ := strings.Cut(kv, "=")
		switch name {
		case notifySocketEnv, workerArgsEnv, noCoreEnv:
		case "GOTRACEBACK":
			noCore = val != "crash"
		default:
			env = append(env, kv)
		}
	}
	if noCore {
		env = append(env, noCoreEnv+"=1")
	}
	enc, _ := json.Marshal(args) // a []string always encodes
	return append(env, "GOTRACEBACK="+workerTraceback, workerArgsEnv+"="+string(enc))
}

// disableCoreDumps sets the soft core-file limit to 0 in a worker that
// noCoreEnv marks.
func disableCoreDumps() error {
	if os.Getenv(noCoreEnv) == "" {
		return nil
	}
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_CORE, &lim); err != nil {
		return os.NewSyscallError("getrlimit", err)
	}
	lim.Cur = 0
	return os.NewSyscallError("setrlimit", unix.Setrlimit(unix.RLIMIT_CORE, &lim))
}
