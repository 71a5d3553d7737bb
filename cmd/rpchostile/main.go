//go:build linux

// Command rpchostile measures how much memory hostile clients cost a running
// rpcd. It opens connections to 127.0.0.1 that each leave a large frame half
// sent, and connections that pipeline requests and never read an answer,
// holds them, then closes them all, and reports the summed resident set size
// (VmRSS) of the master's workers before, at its peak, and after.
//
//	rpchostile -port 8080 -pid $(cat rpcd.pid) -half 2000 -readers 40
//
// scripts/hostile-rss.sh starts an rpcd and runs it.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rpcd/rpcd/internal/procfs"
	"github.com/rpcd/rpcd/protocol"
)

type options struct {
	port     int
	pid      int
	half     int
	halfSent int
	frame    int
	readers  int
	requests int
	answer   int
	hold     time.Duration
	after    time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.port, "port", 8080, "rpcd's port on 127.0.0.1")
	flag.IntVar(&o.pid, "pid", 0, "the rpcd master's pid, whose workers are measured")
	flag.IntVar(&o.half, "half", 2000, "connections that leave a frame half sent")
	flag.IntVar(&o.halfSent, "half-sent", 600<<10, "bytes each half-sent frame delivers")
	flag.IntVar(&o.frame, "frame", 1<<20, "advertised body length of each half-sent frame")
	flag.IntVar(&o.readers, "readers", 40, "connections that pipeline requests and never read")
	flag.IntVar(&o.requests, "requests", 500, "pings each non-reader sends")
	flag.IntVar(&o.answer, "answer", 16<<10, "bytes of params each ping echoes back")
	flag.DurationVar(&o.hold, "hold", 5*time.Second, "how long the hostile connections stay open")
	flag.DurationVar(&o.after, "after", 10*time.Second, "how long to watch after closing them")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "rpchostile:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.pid <= 0 || o.halfSent >= o.frame {
		return fmt.Errorf("need -pid, and -half-sent below -frame")
	}
	before, err := workersRSS(o.pid)
	if err != nil {
		return err
	}
	conns, err := openHostile(o)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	if err != nil {
		return err
	}
	_, peak := watch(o.pid, o.hold)
	for _, c := range conns {
		_ = c.Close()
	}
	conns = nil
	after, _ := watch(o.pid, o.after)
	last, err := workersRSS(o.pid)
	if err != nil {
		return err
	}
	fmt.Printf("workers %d  half-sent %d x %d B of %d  non-readers %d x %d x %d B\n",
		len(procfs.Children(o.pid, procfs.Live)), o.half, o.halfSent, o.frame, o.readers, o.requests, o.answer)
	fmt.Printf("worker RSS  before %s  peak %s  lowest after %s  at end %s\n", mib(before), mib(peak), mib(after), mib(last))
	return nil
}

// openHostile opens the half-sending and the non-reading connections.
func openHostile(o options) ([]net.Conn, error) {
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(o.port))
	half := make([]byte, protocol.HeaderSize, protocol.HeaderSize+o.halfSent)
	protocol.LittleEndian.PutLen(half, uint32(o.frame))
	half = append(half, `{"in":"ping","params":"`...)
	half = append(half, strings.Repeat("x", protocol.HeaderSize+o.halfSent-len(half))...)
	params := []byte(`"` + strings.Repeat("y", o.answer) + `"`)
	var pings []byte
	for range o.requests {
		pings = protocol.AppendRequest(pings, protocol.LittleEndian, "ping", params)
	}
	var conns []net.Conn
	for i := range o.half + o.readers {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			return conns, fmt.Errorf("dial connection %d: %w", i, err)
		}
		conns = append(conns, c)
		msg := half
		if i >= o.half {
			msg = pings
		}
		// A write the server stops reading returns at the deadline: that is
		// the backpressure under test, not a failure.
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write(msg)
	}
	return conns, nil
}

// watch samples the workers' summed RSS every 100ms for d and returns the
// lowest and highest sums seen.
func watch(pid int, d time.Duration) (lo, hi int64) {
	lo = -1
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		rss, err := workersRSS(pid)
		if err != nil {
			continue
		}
		if lo < 0 || rss < lo {
			lo = rss
		}
		hi = max(hi, rss)
	}
	return lo, hi
}

// workersRSS sums VmRSS over pid's live children, in bytes.
func workersRSS(pid int) (int64, error) {
	kids := procfs.Children(pid, procfs.Live)
	if len(kids) == 0 {
		return 0, fmt.Errorf("pid %d has no workers", pid)
	}
	var sum int64
	for _, k := range kids {
		rss, err := vmRSS(k)
		if err != nil {
			return 0, err
		}
		sum += rss
	}
	return sum, nil
}

func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read worker memory: %w", err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("read worker memory: no VmRSS for pid %d", pid)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
