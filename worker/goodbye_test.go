//go:build linux

package worker

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// A conn that said hello gets a goodbye frame after its last answer whenever
// the worker closes it gracefully; one that did not sees today's clean end of
// stream alone.
func TestGoodbye(t *testing.T) {
	tests := []struct {
		name  string
		hello bool
		cfg   Config
		close func(*server, *client)
		want  []string // the answers' tail, after what the test sent
	}{
		{name: "drain", hello: true, close: func(s *server, _ *client) { s.w.Shutdown() },
			want: []string{`rpcd.goodbye {"reason":"drain"}`}},
		{name: "drain without hello", close: func(s *server, _ *client) { s.w.Shutdown() }},
		{name: "idle", hello: true, cfg: Config{IdleTimeout: 50 * time.Millisecond}, close: func(*server, *client) {},
			want: []string{`rpcd.goodbye {"reason":"idle"}`}},
		{name: "framing error", hello: true, close: func(_ *server, c *client) { c.write(rawFrame("")) },
			want: []string{"error bad_frame", `rpcd.goodbye {"reason":"framing"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := startWorker(t, tt.cfg)
			c := dial(t, s.addr)
			if tt.hello {
				if out, result := c.call("rpcd.hello", ""); out != "rpcd.hello" || result != `{"goodbye":true}` {
					t.Fatalf("hello answered %s %s", out, result)
				}
			}
			var want []string
			for i := range 3 {
				c.write(request("ping", fmt.Sprint(i)))
				want = append(want, fmt.Sprintf("pong %d", i))
			}
			for range want {
				c.answer()
			}
			tt.close(s, c)
			got := c.answersUntilEOF()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("after the answers got %q, want %q", got, tt.want)
			}
		})
	}
}

// Requests sent after the drain began are not read; the goodbye follows the
// answer to the last request read, so the client knows the rest did not run.
func TestGoodbyeFollowsLastAnswer(t *testing.T) {
	s := startWorker(t, Config{})
	c := dial(t, s.addr)
	c.call("rpcd.hello", "")
	c.write(request("slow", `"held"`))
	s.gates.waitStarted(t, "held")
	s.w.Shutdown()
	s.waitDraining(t)
	c.write(request("ping", `"late"`))
	s.gates.open("held")
	got := c.answersUntilEOF()
	want := []string{`slow "held"`, `rpcd.goodbye {"reason":"drain"}`}
	if !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	if st := s.w.Stats(); st.Requests != 2 {
		t.Fatalf("worker read %d requests, want the hello and the held one", st.Requests)
	}
}
