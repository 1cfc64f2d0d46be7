package queue

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func newQueue(t *testing.T) *Queue {
	t.Helper()
	q := New(filepath.Join(t.TempDir(), "queue"))
	if err := q.Init(-1, -1); err != nil {
		t.Fatal(err)
	}
	return q
}

func enqueue(t *testing.T, q *Queue, from string, body string, rcpts ...string) string {
	t.Helper()
	env := &Envelope{From: from, Proto: "local", User: "test"}
	for _, r := range rcpts {
		env.Recipients = append(env.Recipients, &Recipient{Addr: r})
	}
	w, err := q.Create(env)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString(body); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return w.ID()
}

func TestCommitThenList(t *testing.T) {
	q := newQueue(t)
	body := "Subject: hi\n\nhello\n"
	id := enqueue(t, q, "a@x", body, "b@y", "c@z")

	envs, problems, err := q.List()
	if err != nil || len(problems) > 0 {
		t.Fatalf("List: %v %v", err, problems)
	}
	if len(envs) != 1 {
		t.Fatalf("List: %d messages, want 1", len(envs))
	}
	env := envs[0]
	if env.ID != id || env.From != "a@x" || env.Size != int64(len(body)) || len(env.Recipients) != 2 {
		t.Errorf("envelope = %+v", env)
	}
	if env.Recipients[1].Addr != "c@z" || env.Recipients[1].State != Pending {
		t.Errorf("recipient 1 = %+v", env.Recipients[1])
	}
	if entries, _ := os.ReadDir(q.path(tmpDir)); len(entries) != 0 {
		t.Errorf("tmp/ holds %d files after commit", len(entries))
	}

	m, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	got, _ := io.ReadAll(m.Body())
	if string(got) != body {
		t.Errorf("Body = %q, want %q", got, body)
	}
}

func TestAbortLeavesNothing(t *testing.T) {
	q := newQueue(t)
	w, err := q.Create(&Envelope{Recipients: []*Recipient{{Addr: "b@y"}}})
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("x\n")
	w.Abort()
	for _, d := range []string{tmpDir, msgDir} {
		if entries, _ := os.ReadDir(q.path(d)); len(entries) != 0 {
			t.Errorf("%s/ holds %d files after Abort", d, len(entries))
		}
	}
	if err := w.Commit(); err == nil {
		t.Error("Commit after Abort succeeded")
	}
}

func TestCreateRefusesNoRecipients(t *testing.T) {
	q := newQueue(t)
	if _, err := q.Create(&Envelope{From: "a@x"}); err == nil {
		t.Fatal("Create with no recipients succeeded")
	}
}

func TestLockIsExclusive(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, "", "x\n", "b@y")
	m, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	// flock locks belong to open files, so a second open in this process
	// conflicts exactly as another process would.
	if _, err := q.Lock(id); !errors.Is(err, ErrLocked) {
		t.Errorf("second Lock: %v, want ErrLocked", err)
	}
	if env, err := q.Read(id); err != nil || !env.Active {
		t.Errorf("Read of a locked message: Active=%v, %v; want true", env != nil && env.Active, err)
	}
	m.Close()
	if env, err := q.Read(id); err != nil || env.Active {
		t.Errorf("Read of an unlocked message: Active=%v, %v; want false", env != nil && env.Active, err)
	}
	m2, err := q.Lock(id)
	if err != nil {
		t.Fatalf("Lock after Close: %v", err)
	}
	m2.Close()
}

func TestLockAfterRemove(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, "", "x\n", "b@y")
	m, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Lock(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Lock of removed message: %v, want ErrNotFound", err)
	}
	if _, err := q.Lock("../../etc/pass"); !errors.Is(err, ErrBadID) {
		t.Errorf("Lock of a path: %v, want ErrBadID", err)
	}
}

func TestMarkSurvivesReopen(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, "a@x", "x\n", "b@y", "c@z", "d@w")
	m, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	next := time.Now().Add(5 * time.Minute).Truncate(time.Second)
	must(t, m.Mark(0, Delivered, "250 2.0.0 ok", time.Time{}))
	must(t, m.Mark(1, Deferred, "451 4.3.0 try later", next))
	must(t, m.Mark(1, Deferred, "421 4.4.2 timeout", next))
	must(t, m.Mark(2, Failed, "550 5.1.1 no such user", time.Time{}))
	m.Close()

	env, err := q.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		state    State
		attempts int
		reply    string
	}{
		{Delivered, 1, "250 2.0.0 ok"},
		{Deferred, 2, "421 4.4.2 timeout"},
		{Failed, 1, "550 5.1.1 no such user"},
	}
	for i, w := range want {
		rc := env.Recipients[i]
		if rc.State != w.state || rc.Attempts != w.attempts || rc.LastReply != w.reply {
			t.Errorf("recipient %d = %v/%d/%q, want %v/%d/%q", i, rc.State, rc.Attempts, rc.LastReply, w.state, w.attempts, w.reply)
		}
	}
	if !env.Recipients[1].NextAttempt.Equal(next) {
		t.Errorf("NextAttempt = %v, want %v", env.Recipients[1].NextAttempt, next)
	}
	if p := env.Pending(); len(p) != 1 || p[0] != 1 {
		t.Errorf("Pending = %v, want [1]", p)
	}
	if err := (&Message{env: env}).Mark(3, Delivered, "", time.Time{}); err == nil {
		t.Error("Mark of recipient 3 of 3 succeeded")
	}
}

func TestTornStateLineIgnored(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, "a@x", "x\n", "b@y", "c@z")
	m, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	must(t, m.Mark(0, Delivered, "250 ok", time.Time{}))
	m.Close()
	f, err := os.OpenFile(q.path(stateDir, id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"rcpt":1,"state":"deliv`) // cut by a crash
	f.Close()
	env, err := q.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	if env.Recipients[0].State != Delivered || env.Recipients[1].State != Pending {
		t.Errorf("states = %v, %v; want delivered, pending", env.Recipients[0].State, env.Recipients[1].State)
	}
}

func TestRemoveAndClean(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, "a@x", "x\n", "b@y")
	keep := enqueue(t, q, "a@x", "x\n", "b@y")
	m, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	must(t, m.Mark(0, Delivered, "250 ok", time.Time{}))
	must(t, m.Remove())
	ids, _ := q.IDs()
	if len(ids) != 1 || ids[0] != keep {
		t.Errorf("IDs after Remove = %v, want [%s]", ids, keep)
	}
	if _, err := os.Stat(q.path(stateDir, id)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state log outlived its message: %v", err)
	}

	// Debris of crashes: an old tmp file, a fresh one, an orphan log.
	old := q.path(tmpDir, "OLD")
	os.WriteFile(old, []byte("x"), 0o600)
	os.Chtimes(old, time.Now().Add(-48*time.Hour), time.Now().Add(-48*time.Hour))
	os.WriteFile(q.path(tmpDir, "NEW"), []byte("x"), 0o600)
	os.WriteFile(q.path(stateDir, "ORPHAN"), []byte("x"), 0o600)
	must(t, q.Clean(24*time.Hour))
	for name, want := range map[string]bool{old: false, q.path(tmpDir, "NEW"): true, q.path(stateDir, "ORPHAN"): false, q.path(msgDir, keep): true} {
		if _, err := os.Stat(name); (err == nil) != want {
			t.Errorf("after Clean, %s exists = %v, want %v", name, err == nil, want)
		}
	}
}

func TestListReportsDamageAndGoesOn(t *testing.T) {
	q := newQueue(t)
	good := enqueue(t, q, "a@x", "x\n", "b@y")
	bad := newID(time.Now())
	os.WriteFile(q.path(msgDir, bad), []byte("not json\n"), 0o640)
	os.WriteFile(q.path(msgDir, "README"), []byte("not a message"), 0o640)
	envs, problems, err := q.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(envs) != 1 || envs[0].ID != good {
		t.Errorf("List = %d envelopes, want just %s", len(envs), good)
	}
	if len(problems) != 1 || !strings.Contains(problems[0].Error(), bad) {
		t.Errorf("problems = %v, want one naming %s", problems, bad)
	}
}

func TestIDs(t *testing.T) {
	seen := make(map[string]bool)
	var mu sync.Mutex
	var wg sync.WaitGroup
	now := time.Now()
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 1000; i++ {
				id := newID(now) // a stalled clock
				mu.Lock()
				if seen[id] {
					t.Errorf("duplicate ID %s", id)
				}
				seen[id] = true
				mu.Unlock()
				if !ValidID(id) {
					t.Errorf("newID gave invalid %q", id)
				}
			}
		}()
	}
	wg.Wait()
	a, b := newID(time.Now()), newID(time.Now().Add(-time.Hour))
	if a >= b {
		t.Errorf("IDs do not increase when the clock steps back: %s then %s", a, b)
	}
	for _, s := range []string{"", "abc", "0000000000000I", "../../../etc/x", "00000000000000/"} {
		if ValidID(s) {
			t.Errorf("ValidID(%q) = true", s)
		}
	}
}

func TestRenameNoReplace(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	os.WriteFile(a, []byte("new"), 0o600)
	os.WriteFile(b, []byte("old"), 0o600)
	if err := renameNoReplace(a, b); !errors.Is(err, os.ErrExist) {
		t.Errorf("renameNoReplace over a file: %v, want ErrExist", err)
	}
	if got, _ := os.ReadFile(b); string(got) != "old" {
		t.Errorf("target overwritten: %q", got)
	}
}

func TestWake(t *testing.T) {
	q := newQueue(t)
	// Nobody listens: must say so, not block.
	if err := q.Wake("00000000000000"); !errors.Is(err, ErrNoRunner) {
		t.Errorf("Wake with no runner: %v, want ErrNoRunner", err)
	}
	l, err := q.ListenWake()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	id := enqueue(t, q, "", "x\n", "b@y")
	for _, want := range []string{id, ""} { // a message, then a flush
		if err := q.Wake(want); err != nil {
			t.Fatalf("Wake(%q): %v", want, err)
		}
		got, err := l.Next()
		if err != nil || got != want {
			t.Errorf("Next = %q, %v; want %q", got, err, want)
		}
	}
	// Close ends a Next that is waiting.
	done := make(chan error)
	go func() {
		_, err := l.Next()
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Error("Next after Close returned no error")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not end a waiting Next")
	}
}

func FuzzEnvelope(f *testing.F) {
	f.Add([]byte(`{"v":1,"id":"0000000000000A","from":"a@x","rcpts":[{"addr":"b@y"}],"arrival":"2026-11-28T00:00:00Z"}`+"\nbody\n"),
		[]byte(`{"rcpt":0,"state":"delivered","at":"2026-11-28T00:00:00Z"}`+"\n"+`{"rcpt":-1,"warned":[0],"at":"2026-11-28T00:00:00Z"}`+"\n"))
	f.Add([]byte("{}\n"), []byte("{\"rcpt\":5}\n{"))
	f.Fuzz(func(t *testing.T, file, log []byte) {
		env, n, err := readEnvelope(bufio.NewReader(bytes.NewReader(file)))
		if err != nil {
			return
		}
		if n <= 0 || n > int64(len(file)) {
			t.Fatalf("envelope length %d of %d", n, len(file))
		}
		env.applyLog(log)
		for _, rc := range env.Recipients {
			if rc.State < Pending || rc.State > Failed {
				t.Fatalf("state %d", rc.State)
			}
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestInitCreatesWhatIsMissing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "queue")
	os.Mkdir(dir, 0o700) // an administrator's choice: kept
	q := New(dir)
	if q.Initialized() {
		t.Fatal("Initialized before Init")
	}
	must(t, q.Init(-1, -1))
	must(t, q.Init(-1, -1)) // again: nothing to do
	if !q.Initialized() {
		t.Fatal("not Initialized after Init")
	}
	for d, want := range map[string]os.FileMode{dir: 0o700 | os.ModeDir, q.path(msgDir): 0o770 | os.ModeDir | os.ModeSetgid} {
		if st, err := os.Stat(d); err != nil || st.Mode() != want {
			t.Errorf("%s: mode %v (%v), want %v", d, st.Mode(), err, want)
		}
	}
}

// One runner daemon per queue: a second ListenWake fails while the first
// listens, and succeeds once it has stopped.
func TestListenWakeOnce(t *testing.T) {
	q := newQueue(t)
	l, err := q.ListenWake()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := q.ListenWake(); !errors.Is(err, ErrListening) {
		t.Fatalf("second ListenWake: %v, want ErrListening", err)
	}
	l.Close()
	l, err = q.ListenWake()
	if err != nil {
		t.Fatalf("ListenWake after Close: %v", err)
	}
	l.Close()
}

// A delay warning is recorded per recipient, survives a reopen beside the
// attempts, and a warning line cut by a crash counts as not written.
func TestMarkWarnedSurvivesReopen(t *testing.T) {
	q := newQueue(t)
	id := enqueue(t, q, "a@x", "x\n", "b@y", "c@z", "d@w")
	m, err := q.Lock(id)
	if err != nil {
		t.Fatal(err)
	}
	must(t, m.Mark(0, Deferred, "451 later", time.Now().Add(time.Minute)))
	must(t, m.Mark(2, Deferred, "451 later", time.Now().Add(time.Minute)))
	must(t, m.MarkWarned([]int{0, 2}))
	if err := m.MarkWarned([]int{1, 3}); err == nil {
		t.Error("MarkWarned of recipient 3 of 3 succeeded")
	}
	m.Close()
	f, err := os.OpenFile(q.path(stateDir, id), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"rcpt":-1,"warned":[1],"at":"2026`) // cut by a crash
	f.Close()
	env, err := q.Read(id)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false, true} {
		rc := env.Recipients[i]
		if got := !rc.Warned.IsZero(); got != want {
			t.Errorf("recipient %d warned = %v, want %v", i, got, want)
		}
	}
	if rc := env.Recipients[0]; rc.State != Deferred || rc.Attempts != 1 {
		t.Errorf("the warning changed recipient 0: %v/%d", rc.State, rc.Attempts)
	}
	if rc := env.Recipients[1]; rc.State != Pending || rc.Attempts != 0 {
		t.Errorf("recipient 1 = %v/%d, want pending/0", rc.State, rc.Attempts)
	}
}
