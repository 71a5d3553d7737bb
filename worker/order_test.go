package worker

import "testing"

func TestAnswerQueueKeepsOrder(t *testing.T) {
	var q answerQueue
	first := q.nextSeq()
	q.pushPending()
	q.readyTail().data = []byte("b")
	second := q.nextSeq()
	q.pushPending()
	if _, ok := q.popReady(); ok {
		t.Fatal("popped past a pending slot")
	}
	if !q.fill(second, []byte("c")) || q.fill(second, []byte("again")) || q.fill(99, nil) {
		t.Fatal("fill accepted a wrong slot or refused a right one")
	}
	q.fill(first, []byte("a"))
	var got []byte
	for data, ok := q.popReady(); ok; data, ok = q.popReady() {
		got = append(got, data...)
	}
	if string(got) != "abc" || !q.empty() || q.pooled != 0 {
		t.Fatalf("got %q, empty %v, pooled %d", got, q.empty(), q.pooled)
	}
}
