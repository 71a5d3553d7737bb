//go:build linux

package client

import (
	"context"
	"errors"
	"testing"
	"time"
)

type ctxKey struct{}

// A call's own context ends at its deadline or at its cancel, like
// context.WithTimeout's, and keeps its parent's values.
func TestWithTimeout(t *testing.T) {
	parent := context.WithValue(context.Background(), ctxKey{}, "v")
	tests := []struct {
		name    string
		timeout time.Duration
		cancel  bool // cancel before the deadline
		want    error
	}{
		{name: "deadline", timeout: 20 * time.Millisecond, want: context.DeadlineExceeded},
		{name: "past deadline", timeout: -time.Second, want: context.DeadlineExceeded},
		{name: "canceled", timeout: waitLimit, cancel: true, want: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := withTimeout(parent, tt.timeout)
			defer cancel()
			if _, ok := ctx.(*deadlineCtx); !ok {
				t.Fatalf("got a %T for a parent that cannot be canceled", ctx)
			}
			if ctx.Value(ctxKey{}) != "v" {
				t.Fatal("parent's value lost")
			}
			if tt.timeout > 0 && ctx.Err() != nil {
				t.Fatalf("ended before its deadline: %v", ctx.Err())
			}
			if tt.cancel {
				cancel()
			}
			select {
			case <-ctx.Done():
			case <-time.After(waitLimit):
				t.Fatal("Done not closed")
			}
			if err := ctx.Err(); !errors.Is(err, tt.want) {
				t.Fatalf("Err() = %v, want %v", err, tt.want)
			}
		})
	}
}

// A parent that can be canceled gets context.WithTimeout, so that its
// cancel ends the call.
func TestWithTimeoutFollowsParent(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	ctx, cancel := withTimeout(parent, waitLimit)
	defer cancel()
	cancelParent()
	select {
	case <-ctx.Done():
	case <-time.After(waitLimit):
		t.Fatal("parent's cancel did not end the call's context")
	}
	if !errors.Is(ctx.Err(), context.Canceled) {
		t.Fatalf("Err() = %v, want canceled", ctx.Err())
	}
}
