package test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"yubin/internal/queue"
)

// testMessage is message n of about size bytes whose header carries the
// checksum of its body, so that any listed copy can be checked for damage.
func testMessage(n, size int) string {
	var b strings.Builder
	for b.Len() < size {
		fmt.Fprintf(&b, "line %d of message %d: %s\n", b.Len(), n, strings.Repeat("x", 60))
	}
	sum := sha256.Sum256([]byte(b.String()))
	return fmt.Sprintf("Subject: test %d\nX-Test-Tag: %d\nX-Test-Sum: %s\n\n%s", n, n, hex.EncodeToString(sum[:]), b.String())
}

// checkTestMessage fails the test when a queued test message is damaged and
// returns its tag.
func checkTestMessage(t *testing.T, raw string) string {
	t.Helper()
	head, body, ok := strings.Cut(raw, "\n\n")
	tag, sum := "", ""
	for _, line := range strings.Split(head, "\n") {
		if v, ok := strings.CutPrefix(line, "X-Test-Tag: "); ok {
			tag = v
		}
		if v, ok := strings.CutPrefix(line, "X-Test-Sum: "); ok {
			sum = v
		}
	}
	got := sha256.Sum256([]byte(body))
	if !ok || tag == "" || hex.EncodeToString(got[:]) != sum {
		t.Errorf("damaged message in the queue (tag %q, %d bytes)", tag, len(raw))
	}
	return tag
}

// queueList lists the queue without failing the test on problems.
func (s *system) queueList() ([]*queue.Envelope, []error, error) {
	return queue.New(s.queueDir).List()
}

// A sendmail killed at each step of the commit: before the rename nothing is
// listed, after it the message is whole; an acknowledged message is always
// there.
func TestQueueCrashAtEachStep(t *testing.T) {
	tests := []struct {
		step   string
		queued bool
	}{
		{"created", false},
		{"written", false},
		{"synced", false},
		{"renamed", true},
		{"committed", true},
	}
	for _, tt := range tests {
		t.Run(tt.step, func(t *testing.T) {
			s := newSystem(t)
			cmd := s.command("sendmail", "-i", "rcpt@example.org")
			cmd.Env = append(cmd.Env, "YUBIN_TEST_CRASH_AT="+tt.step)
			cmd.Stdin = strings.NewReader(testMessage(1, 64<<10))
			r := runCmd(t, cmd)
			if r.code != -1 {
				t.Fatalf("sendmail was not killed at %s: exit %d %s", tt.step, r.code, r.stderr)
			}
			envs, problems, err := s.queueList()
			if err != nil || len(problems) > 0 {
				t.Fatalf("queue damaged: %v %v", err, problems)
			}
			if got := len(envs) == 1; got != tt.queued {
				t.Fatalf("killed at %s: message queued = %v, want %v", tt.step, got, tt.queued)
			}
			if tt.queued {
				checkTestMessage(t, s.message(envs[0].ID))
			}
			// What the crash left in tmp/ is for Clean, never for readers.
			if err := queue.New(s.queueDir).Clean(0); err != nil {
				t.Fatal(err)
			}
			if left, _ := os.ReadDir(filepath.Join(s.queueDir, "tmp")); len(left) != 0 {
				t.Errorf("Clean left %d files in tmp/", len(left))
			}
		})
	}
}

// Many sendmails killed at random instants while mailq-like readers list the
// queue all along: no reader ever sees a damaged message, and every message
// whose sendmail exited 0 is in the queue intact.
func TestQueueCrashAtRandomInstants(t *testing.T) { crashAtRandomInstants(t, 60) }

// The same for longer: make soak.
func TestSoakQueueCrash(t *testing.T) {
	if os.Getenv("YUBIN_SOAK") == "" {
		t.Skip("a soak test: make soak")
	}
	crashAtRandomInstants(t, 3000)
}

func crashAtRandomInstants(t *testing.T, runs int) {
	s := newSystem(t)
	var stop atomic.Bool
	var readers sync.WaitGroup
	var listings atomic.Int64
	for r := 0; r < 2; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			q := queue.New(s.queueDir)
			for !stop.Load() {
				envs, problems, err := q.List()
				if err != nil || len(problems) > 0 {
					t.Errorf("listing during crashes: %v %v", err, problems)
					return
				}
				for _, env := range envs {
					if env.Size == 0 || len(env.Recipients) != 1 {
						t.Errorf("half-written message listed: %+v", env)
					}
				}
				listings.Add(1)
			}
		}()
	}
	acked := map[string]bool{}
	killed := 0
	var life time.Duration // a whole sendmail run, measured by the first runs
	const calibration = 3
	for i := 0; i < runs; i++ {
		cmd := s.command("sendmail", "-i", "rcpt@example.org")
		cmd.Stdin = strings.NewReader(testMessage(i, 512<<10))
		start := time.Now()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if i >= calibration {
			// Spread the kills over the whole life of a sendmail:
			// start-up, reading, writing, fsync, rename, exit.
			delay := time.Duration(rand.Int64N(int64(life) * 5 / 4))
			time.AfterFunc(delay, func() { cmd.Process.Kill() })
		}
		err := cmd.Wait()
		if i < calibration {
			life += time.Since(start) / calibration
		}
		if err == nil {
			acked[fmt.Sprint(i)] = true
		} else if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == -1 {
			killed++
		} else {
			t.Errorf("sendmail %d: %v", i, err)
		}
	}
	stop.Store(true)
	readers.Wait()
	t.Logf("%d runs of about %v: %d acknowledged, %d killed; %d listings taken meanwhile", runs, life, len(acked), killed, listings.Load())
	if killed == 0 || len(acked) == 0 {
		t.Logf("warning: the kills all fell on one side (acked %d, killed %d)", len(acked), killed)
	}
	found := map[string]bool{}
	for _, env := range s.queue() {
		found[checkTestMessage(t, s.message(env.ID))] = true
	}
	for tag := range acked {
		if !found[tag] {
			t.Errorf("message %s was acknowledged but is not in the queue", tag)
		}
	}
}
