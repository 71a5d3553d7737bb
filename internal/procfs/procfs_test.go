package procfs

import (
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/rpcd/rpcd/internal/waitfor"
)

func TestChildrenFindsLiveAndZombieChild(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep command to start a child with: %v", err)
	}
	pid := cmd.Process.Pid
	if got := Children(os.Getpid(), Live); !slices.Contains(got, pid) {
		t.Fatalf("Children(self, Live) = %v, want it to hold %d", got, pid)
	}
	cmd.Process.Kill()
	// Until it is waited for, the killed child is a zombie.
	zombie := func(state string) bool { return state == "Z" }
	waitfor.Until(t, 5*time.Second, "the killed child as a zombie", func() bool {
		return slices.Contains(Children(os.Getpid(), zombie), pid)
	})
	if got := Children(os.Getpid(), Live); slices.Contains(got, pid) {
		t.Fatalf("Children(self, Live) = %v still holds the zombie %d", got, pid)
	}
	cmd.Wait()
	if got := Children(os.Getpid(), nil); slices.Contains(got, pid) {
		t.Fatalf("Children(self, nil) = %v holds %d after it was reaped", got, pid)
	}
}
