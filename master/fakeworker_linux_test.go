package master

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the worker binary: started with WorkerSlotEnv
// set, it runs runFakeWorker instead of the tests.
const (
	// behaviourEnv picks how the fake worker misbehaves (empty: it behaves).
	behaviourEnv = "RPCD_MASTER_TEST_BEHAVIOUR"
	// behaviourSlotsEnv lists the slots that misbehave (empty: all).
	behaviourSlotsEnv = "RPCD_MASTER_TEST_SLOTS"
	// catchingDirEnv names a directory where the fake worker creates a
	// file named by its pid once it catches SIGTERM.
	catchingDirEnv = "RPCD_MASTER_TEST_CATCHING"
)

// Fake worker behaviours.
const (
	behaveWell       = ""
	behaveExit       = "exit"        // exit 1 at once
	behaveNeverReady = "never-ready" // never report ready
	behaveIgnoreTerm = "ignore-term" // ignore SIGTERM
	behaveRecycle    = "recycle"     // ask to be recycled once ready
	behaveReadyLate  = "ready-late"  // report ready only when told to stop, then exit
)

// slowCheckArg makes the test binary a check run that takes
// slowCheckDuration, then fails.
const (
	slowCheckArg      = "-slow-failing-check"
	slowCheckDuration = 5 * time.Second
)

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == slowCheckArg {
		time.Sleep(slowCheckDuration)
		fmt.Println("check failed on purpose")
		os.Exit(1)
	}
	if slot, ok := os.LookupEnv(WorkerSlotEnv); ok {
		os.Exit(runFakeWorker(slot, behaviourFor(slot)))
	}
	os.Exit(m.Run())
}

func behaviourFor(slot string) string {
	slots := os.Getenv(behaviourSlotsEnv)
	if slots == "" || slices.Contains(strings.Split(slots, ","), slot) {
		return os.Getenv(behaviourEnv)
	}
	return behaveWell
}

// runFakeWorker answers every connection on ListenFD with
// "slot=<slot> pid=<pid>\n", writes StatusReady on StatusFD and exits 0 on
// SIGTERM, or exits when its parent goes away.
func runFakeWorker(slot, behaviour string) int {
	if behaviour == behaveExit {
		return 1
	}
	parent := os.Getppid()
	term := make(chan os.Signal, 1)
	if behaviour == behaveIgnoreTerm {
		signal.Ignore(unix.SIGTERM)
	} else {
		signal.Notify(term, unix.SIGTERM, RetireSignal)
	}
	if dir := os.Getenv(catchingDirEnv); dir != "" {
		os.WriteFile(filepath.Join(dir, strconv.Itoa(os.Getpid())), nil, 0o644)
	}
	inherited := os.NewFile(ListenFD, "listener")
	ln, err := net.FileListener(inherited)
	inherited.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake worker:", err)
		return 2
	}
	go answerConns(ln, slot)
	status := os.NewFile(StatusFD, "status")
	if behaviour != behaveNeverReady && behaviour != behaveReadyLate {
		status.Write([]byte{StatusReady})
		if behaviour == behaveRecycle {
			status.Write([]byte{StatusRecycle})
		}
	}
	orphaned := time.NewTicker(50 * time.Millisecond)
	for {
		select {
		case <-term:
			ln.Close()
			if behaviour == behaveReadyLate {
				// Ready just as the stop began: the master reads this
				// before it reaps the exit.
				status.Write([]byte{StatusReady})
				time.Sleep(200 * time.Millisecond)
			}
			return 0
		case <-orphaned.C:
			if os.Getppid() != parent {
				return 3
			}
		}
	}
}

func answerConns(ln net.Listener, slot string) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		fmt.Fprintf(c, "slot=%s pid=%d\n", slot, os.Getpid())
		c.Close()
	}
}
