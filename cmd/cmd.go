//go:build linux

package cmd

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/debug"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/rpcd/rpcd/rpc"
)

// Version is rpcd's version; release builds set it with
// -ldflags "-X github.com/rpcd/rpcd/cmd.Version=v1.2.3".
var Version = ""

// Main runs rpcd with reg's methods and exts, and exits with its status.
func Main(reg *rpc.Registry, exts ...Extension) {
	os.Exit(Run(os.Args[1:], reg, os.Stdout, os.Stderr, exts...))
}

// Run runs rpcd with args (no program name) and returns its exit status:
// 0 after a graceful stop, 1 when the server fails, 2 for bad flags or
// configuration.
func Run(args []string, reg *rpc.Registry, stdout, stderr io.Writer, exts ...Extension) int {
	r, err := currentRole()
	if err != nil {
		fmt.Fprintf(stderr, "rpcd: %v\n", err)
		return 2
	}
	s, err := parseSettings(append(r.args, args...), exts, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		return 2
	case r.worker:
		return runWorker(s, r.slot, reg, stderr)
	}
	return runCommand(s, reg, stdout, stderr)
}

// runCommand is everything but a worker: the master, or one of the
// actions -version, -t, -s and -check.
func runCommand(s *settings, reg *rpc.Registry, stdout, stderr io.Writer) int {
	if s.version {
		fmt.Fprintf(stdout, "rpcd %s %s\n", version(), runtime.Version())
		return 0
	}
	sigs, stopCatching := catchMasterSignals(s)
	defer stopCatching()
	if err := s.finish(); err != nil {
		fmt.Fprintf(stderr, "rpcd: %v\n", err)
		return 2
	}
	if code, done := runAction(&s.options, stdout, stderr); done {
		return code
	}
	if s.healthCheck {
		return runHealthCheck(s, stdout, stderr)
	}
	return runMaster(s, reg, stderr, sigs)
}

func newLogger(opts *options, out io.Writer) *zap.Logger {
	level, _ := zapcore.ParseLevel(opts.logLevel)
	enc := logEncoderConfig()
	var encoder zapcore.Encoder
	if opts.logFormat == "json" {
		encoder = zapcore.NewJSONEncoder(enc)
	} else {
		enc.EncodeLevel = zapcore.CapitalLevelEncoder
		encoder = zapcore.NewConsoleEncoder(enc)
	}
	return zap.New(zapcore.NewCore(encoder, zapcore.Lock(zapcore.AddSync(out)), level))
}

// logEncoderConfig names and encodes the fields of every log rpcd writes.
func logEncoderConfig() zapcore.EncoderConfig {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.StringDurationEncoder
	return enc
}

func version() string {
	if Version != "" {
		return Version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" {
		return info.Main.Version
	}
	return "(devel)"
}
