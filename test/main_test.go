// Package test runs yubin's built binaries end to end: each test writes a
// yubin.conf into a temp directory, runs the programs on it (on loopback when
// they talk over the network) and checks what lands on disk and what outside
// clients see.
package test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"yubin/internal/queue"
)

// binDir holds the binaries built once for all tests.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "yubin-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	// Built as make builds them, so that tests run what is installed.
	build := exec.Command("make", "-s", "build", "BIN="+dir)
	build.Dir = ".."
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// system is one yubin installation in a temp directory.
type system struct {
	t        *testing.T
	dir      string
	conf     string
	queueDir string
	hostname string
}

// newSystem writes a yubin.conf with the given extra lines into a fresh temp
// directory and creates its queue.
func newSystem(t *testing.T, extra ...string) *system {
	t.Helper()
	dir := t.TempDir()
	s := &system{t: t, dir: dir, conf: filepath.Join(dir, "yubin.conf"),
		queueDir: filepath.Join(dir, "queue"), hostname: "mx.test.example"}
	lines := append([]string{
		"hostname = " + s.hostname,
		"queue_dir = " + s.queueDir,
		"aliases = " + filepath.Join(dir, "aliases"),
	}, extra...)
	if err := os.WriteFile(s.conf, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := queue.New(s.queueDir).Init(-1, -1); err != nil {
		t.Fatal(err)
	}
	return s
}

// result is what a program did.
type result struct {
	stdout, stderr string
	code           int
}

// run runs a program of the system with stdin and returns its output and
// exit status.
func (s *system) run(stdin string, prog string, args ...string) result {
	s.t.Helper()
	cmd := s.command(prog, args...)
	cmd.Stdin = strings.NewReader(stdin)
	return runCmd(s.t, cmd)
}

// command prepares a program of the system, configured through YUBIN_CONF.
func (s *system) command(prog string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, prog), args...)
	cmd.Env = append(os.Environ(), "YUBIN_CONF="+s.conf)
	return cmd
}

func runCmd(t *testing.T, cmd *exec.Cmd) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exit *exec.ExitError
	code := 0
	switch {
	case errors.As(err, &exit):
		code = exit.ExitCode()
	case err != nil:
		t.Fatalf("%s: %v", cmd.Path, err)
	}
	return result{stdout.String(), stderr.String(), code}
}

// queue lists the system's queue, failing the test on any damage.
func (s *system) queue() []*queue.Envelope {
	s.t.Helper()
	envs, problems, err := queue.New(s.queueDir).List()
	if err != nil || len(problems) > 0 {
		s.t.Fatalf("queue: %v %v", err, problems)
	}
	return envs
}

// message returns the queued message id as bytes.
func (s *system) message(id string) string {
	s.t.Helper()
	m, err := queue.New(s.queueDir).Lock(id)
	if err != nil {
		s.t.Fatal(err)
	}
	defer m.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(m.Body()); err != nil {
		s.t.Fatal(err)
	}
	return b.String()
}

// rcpts lists an envelope's recipient addresses.
func rcpts(env *queue.Envelope) []string {
	var a []string
	for _, r := range env.Recipients {
		a = append(a, r.Addr)
	}
	return a
}
