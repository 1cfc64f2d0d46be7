package queue

import (
	"bytes"
	"fmt"
	"os"
	"testing"
	"time"
)

// Two DSN logs on one queue (two runner processes, or one after a restart)
// share the counts; times leave the window; a rewrite of the file by one
// keeps the counts for both.
func TestDSNLogShared(t *testing.T) {
	q := newQueue(t)
	a, b := q.DSNLog(time.Hour), q.DSNLog(time.Hour)
	defer a.Close()
	defer b.Close()
	now := time.Now()
	allow := func(l *DSNLog, sender string, at time.Time) bool {
		t.Helper()
		ok, err := l.Allow(sender, 3, at)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	for i, l := range []*DSNLog{a, b, a} {
		if !allow(l, "list@x", now.Add(time.Duration(i)*time.Minute)) {
			t.Fatalf("notification %d refused", i+1)
		}
	}
	if allow(b, "list@x", now.Add(3*time.Minute)) || allow(a, "list@x", now.Add(3*time.Minute)) {
		t.Fatal("a fourth notification in the hour went through")
	}
	if !allow(b, "other@x", now.Add(3*time.Minute)) {
		t.Fatal("another sender was refused")
	}
	// An hour after the first, one place is free again, for one of them.
	later := now.Add(time.Hour + 30*time.Second)
	if !allow(b, "list@x", later) || allow(a, "list@x", later) {
		t.Fatal("the window did not slide by exactly one")
	}

	// Enough senders, each once, to make a rewrite worth it, two hours on.
	c := q.DSNLog(time.Hour)
	defer c.Close()
	much := now.Add(3 * time.Hour)
	for i := 0; i < 2*compactMin; i++ {
		allow(a, fmt.Sprintf("s%d@x", i), much.Add(-2*time.Hour+time.Duration(i)*time.Millisecond))
	}
	allow(b, "list@x", much)
	allow(c, "list@x", much)
	allow(a, "list@x", much)
	if allow(b, "list@x", much) || allow(c, "list@x", much) {
		t.Fatal("after a rewrite: a fourth notification went through")
	}
	log, err := os.ReadFile(q.path(dsnLogName))
	if err != nil {
		t.Fatal(err)
	}
	if n := bytes.Count(log, []byte("\n")); n >= compactMin {
		t.Errorf("the file still holds %d lines: never rewritten", n)
	}
}

// Whatever a crash or a hand left in the file, Allow reads past it.
func FuzzDSNLog(f *testing.F) {
	f.Add([]byte("1764300000000 a@x\n1764300000001 b@y\n"))
	f.Add([]byte("bad\n\n 17 \n-5 a@x\n99999999999999999999 a@x\n1764300000000 a@"))
	f.Fuzz(func(t *testing.T, log []byte) {
		q := newQueue(t)
		if err := os.WriteFile(q.path(dsnLogName), log, 0o660); err != nil {
			t.Fatal(err)
		}
		l := q.DSNLog(time.Hour)
		defer l.Close()
		if ok, err := l.Allow("a@x", 1<<20, time.Now()); !ok || err != nil {
			t.Fatalf("Allow = %v, %v", ok, err)
		}
	})
}
