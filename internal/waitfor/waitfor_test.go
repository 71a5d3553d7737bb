package waitfor

import (
	"testing"
	"time"
)

func TestPoll(t *testing.T) {
	tests := []struct {
		name    string
		trueAt  int // the call from which cond holds; 0 never
		timeout time.Duration
		want    bool
	}{
		{name: "at once", trueAt: 1, timeout: time.Second, want: true},
		{name: "after some polls", trueAt: 5, timeout: time.Second, want: true},
		{name: "never", trueAt: 0, timeout: 50 * time.Millisecond, want: false},
		{name: "zero timeout still asks once", trueAt: 1, timeout: 0, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			got := Poll(tt.timeout, func() bool {
				calls++
				return tt.trueAt > 0 && calls >= tt.trueAt
			})
			if got != tt.want {
				t.Fatalf("Poll = %v after %d calls, want %v", got, calls, tt.want)
			}
		})
	}
}
