package backoff

import (
	"context"
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	const base, most = 100 * time.Millisecond, 2 * time.Second
	tests := []struct {
		name string
		n    int
		want time.Duration
	}{
		{name: "first failure", n: 1, want: base},
		{name: "second doubles", n: 2, want: 2 * base},
		{name: "fifth", n: 5, want: 16 * base},
		{name: "capped", n: 6, want: most},
		{name: "long run stays capped", n: 100, want: most},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 50 {
				if got := Delay(tt.n, base, most); got < tt.want*8/10 || got > tt.want*12/10 {
					t.Fatalf("Delay(%d) = %v, want %v ±20 %%", tt.n, got, tt.want)
				}
			}
		})
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if Sleep(ctx, time.Hour) {
		t.Fatal("Sleep on an ended context reported true")
	}
	if !Sleep(context.Background(), time.Millisecond) {
		t.Fatal("Sleep of 1ms reported false")
	}
}
