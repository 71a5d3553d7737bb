//go:build linux

package cmd

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"

	"go.uber.org/zap"
)

// startCPUProfile profiles this worker process into dir (when dir is set), in
// a file named by slot and pid, and returns what stops the profile and writes
// it out. A profile that cannot be started is logged, not fatal.
func startCPUProfile(dir string, slot int, log *zap.Logger) (stop func()) {
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, fmt.Sprintf("worker-%d-%d.pprof", slot, os.Getpid()))
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		log.Warn("cpu profile not started", zap.Error(err))
		return func() {}
	}
	log.Info("writing cpu profile", zap.String("path", path))
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			log.Warn("write cpu profile", zap.String("path", path), zap.Error(err))
		}
	}
}
