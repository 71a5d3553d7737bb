package main

import (
	"testing"
	"time"
)

func TestScheduleGrant(t *testing.T) {
	tests := []struct {
		name         string
		cfg          config
		claimed      int64 // measured requests granted before
		interrupted  bool
		now          time.Duration
		want         int
		wantN        int
		wantMeasured bool
	}{
		{name: "warmup is not measured", cfg: config{warmup: time.Second, duration: time.Second},
			now: 500 * time.Millisecond, want: 8, wantN: 8},
		{name: "measured window", cfg: config{warmup: time.Second, duration: time.Second},
			now: 1500 * time.Millisecond, want: 8, wantN: 8, wantMeasured: true},
		{name: "after the window", cfg: config{warmup: time.Second, duration: time.Second},
			now: 2 * time.Second, want: 8, wantN: 0},
		{name: "no time limit", cfg: config{total: 100}, now: time.Hour, want: 8, wantN: 8, wantMeasured: true},
		{name: "budget partly left", cfg: config{total: 10}, claimed: 7, want: 8, wantN: 3, wantMeasured: true},
		{name: "budget spent", cfg: config{total: 10}, claimed: 10, want: 8, wantN: 0},
		{name: "warmup ignores the budget", cfg: config{total: 10, warmup: time.Second},
			now: time.Millisecond, want: 8, wantN: 8},
		{name: "interrupted", cfg: config{duration: time.Second}, interrupted: true, want: 8, wantN: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSchedule(tt.cfg, time.Now())
			s.claimed.Store(tt.claimed)
			if tt.interrupted {
				s.interrupt()
			}
			n, measured := s.grant(tt.now, tt.want)
			if n != tt.wantN || (n > 0 && measured != tt.wantMeasured) {
				t.Errorf("grant(%v, %d) = %d, %t; want %d, %t", tt.now, tt.want, n, measured, tt.wantN, tt.wantMeasured)
			}
		})
	}
}

func TestScheduleBudgetAcrossCallers(t *testing.T) {
	s := newSchedule(config{total: 1000}, time.Now())
	got := 0
	for i := 0; i < 1000 && !s.finished(0); i++ {
		n, _ := s.grant(0, 7)
		got += n
	}
	if got != 1000 {
		t.Errorf("granted %d requests in total, want 1000", got)
	}
	if n, _ := s.grant(0, 7); n != 0 {
		t.Errorf("grant after the budget = %d, want 0", n)
	}
}

func TestSendQueueKeepsOrder(t *testing.T) {
	q := newSendQueue(3)
	var pushed, popped time.Duration
	for range 10 { // enough rounds to wrap the ring several times
		for q.len() < 3 {
			q.push(pushed, pushed%2 == 0)
			pushed++
		}
		sentAt, measured := q.pop()
		if sentAt != popped || measured != (popped%2 == 0) {
			t.Fatalf("pop = %v, %t; want %v, %t", sentAt, measured, popped, popped%2 == 0)
		}
		popped++
	}
}
