package cmd

import (
	"fmt"
	"net"
	"os"
	"os/signal"

	"go.uber.org/zap"
	"golang.org/x/sys/unix"
)

// notifySocketEnv names the datagram socket on which a service manager
// (systemd with Type=notify) waits for state changes; a leading '@' names an
// abstract socket.
const notifySocketEnv = "NOTIFY_SOCKET"

// serviceNotifier tells the service manager that the master is ready and,
// on a stop signal, that it is stopping. A nil *serviceNotifier does nothing.
type serviceNotifier struct {
	addr  *net.UnixAddr
	log   *zap.Logger
	stops chan os.Signal
	done  chan struct{}
}

// newServiceNotifier returns a notifier for $NOTIFY_SOCKET, or nil when it is
// unset. It unsets the variable so that worker processes, which inherit the
// master's environment, never notify: only the master speaks for the service.
func newServiceNotifier(log *zap.Logger) *serviceNotifier {
	name := os.Getenv(notifySocketEnv)
	os.Unsetenv(notifySocketEnv)
	if name == "" {
		return nil
	}
	n := &serviceNotifier{
		addr:  &net.UnixAddr{Name: name, Net: "unixgram"},
		log:   log,
		stops: make(chan os.Signal, 1),
		done:  make(chan struct{}),
	}
	signal.Notify(n.stops, unix.SIGTERM, unix.SIGINT, unix.SIGQUIT)
	go n.notifyStopping()
	return n
}

// ready reports READY=1 with the master's pid. It is the master's OnReady.
func (n *serviceNotifier) ready() {
	if n == nil {
		return
	}
	n.send(fmt.Sprintf("READY=1\nMAINPID=%d", os.Getpid()))
}

// notifyStopping reports STOPPING=1 on the first stop signal; the master
// acts on the same signal through its own channel.
func (n *serviceNotifier) notifyStopping() {
	select {
	case <-n.stops:
		n.send("STOPPING=1")
	case <-n.done:
	}
}

// close stops watching for stop signals.
func (n *serviceNotifier) close() {
	if n == nil {
		return
	}
	signal.Stop(n.stops)
	close(n.done)
}

// send writes one notification datagram. A service manager that cannot be
// told is no reason to stop serving, so failures are logged.
func (n *serviceNotifier) send(state string) {
	if err := notify(n.addr, state); err != nil {
		n.log.Warn("notify service manager", zap.String("socket", n.addr.Name), zap.Error(err))
	}
}

// notify sends state to the datagram socket at addr.
func notify(addr *net.UnixAddr, state string) error {
	conn, err := net.DialUnix("unixgram", nil, addr)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte(state)); err != nil {
		return fmt.Errorf("send %q: %w", state, err)
	}
	return nil
}
