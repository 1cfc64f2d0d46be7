package pipe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"yubin/internal/mbox"
)

const testUser = "yubin-test"

// command returns a Command that runs line in a fresh directory (its HOME
// and working directory): as ourselves, or when we are root, as an
// unprivileged system user (created if needed) who owns the directory.
func command(t *testing.T, line string) Command {
	t.Helper()
	dir := t.TempDir()
	c := Command{Line: line, Home: dir, User: "tester", Uid: os.Getuid(), Gid: os.Getgid()}
	if os.Geteuid() == 0 {
		c.Uid, c.Gid = ensureUser(t)
		if err := os.Chmod(filepath.Dir(dir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(dir, c.Uid, c.Gid); err != nil {
			t.Fatal(err)
		}
		c.User = testUser
	}
	return c
}

func ensureUser(t *testing.T) (uid, gid int) {
	t.Helper()
	u, err := user.Lookup(testUser)
	if err != nil {
		out, err := exec.Command("useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", testUser).CombinedOutput()
		if u, _ = user.Lookup(testUser); u == nil { // another package's test may have won the race
			t.Skipf("useradd %s: %v %s", testUser, err, out)
		}
	}
	uid, _ = strconv.Atoi(u.Uid)
	gid, _ = strconv.Atoi(u.Gid)
	return uid, gid
}

func asError(t *testing.T, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("got %v (%T), want *pipe.Error", err, err)
	}
	return e
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const message = "Subject: test\n\nFrom the body\nbye\n"

func TestExitStatus(t *testing.T) {
	tests := []struct {
		name, line string
		code       string // "" for delivered
		temporary  bool
		reason     string
	}{
		{"delivered", "cat >/dev/null", "", false, ""},
		{"delivered without reading", "exit 0", "", false, ""},
		{"EX_USAGE", "exit 64", "5.3.0", false, "command line usage error (exit 64)"},
		{"EX_DATAERR", "exit 65", "5.6.0", false, "data format error (exit 65)"},
		{"EX_NOUSER", "exit 67", "5.1.1", false, "user unknown (exit 67)"},
		{"EX_UNAVAILABLE", "exit 69", "5.3.0", false, "service unavailable (exit 69)"},
		{"EX_OSERR", "exit 71", "4.3.0", true, "system resource problem (exit 71)"},
		{"EX_CANTCREAT", "exit 73", "5.2.0", false, "can't create user output file (exit 73)"},
		{"EX_TEMPFAIL", "exit 75", "4.3.0", true, "temporary failure (exit 75)"},
		{"EX_NOPERM", "exit 77", "5.7.0", false, "permission denied (exit 77)"},
		{"EX_CONFIG", "exit 78", "5.3.5", false, "local configuration error (exit 78)"},
		{"other status", "exit 1", "5.3.0", false, "command died with status 1"},
		{"not executable", "exit 126", "5.3.0", false, "command died with status 126"},
		{"not found", "/nonexistent/command", "5.3.0", false, "command died with status 127"},
		{"signal", "kill -TERM $$", "4.3.0", true, "command died with signal 15"},
		{"segfault", "kill -SEGV $$", "4.3.0", true, "command died with signal 11"},
		{"DSN in output, temporary", "echo '4.2.1 mailbox busy, try later'; exit 1", "4.2.1", true, "mailbox busy, try later"},
		{"DSN in output beats sysexits", "echo '5.1.1 no such user here' >&2; exit 75", "5.1.1", false, "no such user here"},
		{"DSN in output with exit 0", "echo '5.1.1 ignored'", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), command(t, tt.line), strings.NewReader(message))
			if tt.code == "" {
				if err != nil {
					t.Fatalf("%s: %v", tt.line, err)
				}
				return
			}
			e := asError(t, err)
			if e.DSN() != tt.code || e.Temporary() != tt.temporary || e.Reason != tt.reason {
				t.Errorf("%s: got %s temporary=%v reason %q, want %s temporary=%v reason %q",
					tt.line, e.DSN(), e.Temporary(), e.Reason, tt.code, tt.temporary, tt.reason)
			}
		})
	}
}

func TestStdin(t *testing.T) {
	env := mbox.Envelope{Sender: "alice@example.org", Recipient: "bob@example.org",
		OriginalRecipient: "postmaster@example.org", Time: time.Date(2024, 11, 28, 4, 16, 31, 0, time.UTC)}
	prelude := "Return-Path: <alice@example.org>\nX-Original-To: postmaster@example.org\nDelivered-To: bob@example.org\n"
	tests := []struct {
		name       string
		noFromLine bool
		msg, want  string
	}{
		{"From_ line", false, message, "From alice@example.org Thu Nov 28 04:16:31 2024\n" + prelude + message},
		{"no From_ line", true, message, prelude + message},
		{"no final newline, binary", true, "Subject: x\n\n\x00\xff\r\nend", prelude + "Subject: x\n\n\x00\xff\r\nend"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := command(t, "cat > stdin.out")
			c.Envelope, c.NoFromLine = env, tt.noFromLine
			if err := Run(context.Background(), c, strings.NewReader(tt.msg)); err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, filepath.Join(c.Home, "stdin.out")); got != tt.want {
				t.Errorf("stdin:\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestEnvironment(t *testing.T) {
	c := command(t, "env > env.out")
	c.Shell = "/bin/sh"
	c.Envelope = mbox.Envelope{Sender: `"odd sender"@example.org`, Recipient: "bob+lists@example.org",
		OriginalRecipient: "Bob@Example.org"}
	c.Extension = "lists"
	c.ClientAddress, c.ClientHostname, c.ClientHelo, c.ClientProtocol = "192.0.2.1", "mx.example.net", "mx.example.net", "ESMTP"
	c.SASLUsername = "bob;rm -rf /"
	t.Setenv("TZ", "Europe/Berlin")
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("SECRET", "must not leak")
	if err := Run(context.Background(), c, strings.NewReader(message)); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(readFile(t, filepath.Join(c.Home, "env.out"))), "\n") {
		k, v, _ := strings.Cut(line, "=")
		got[k] = v
	}
	want := map[string]string{
		"PATH":               "/usr/bin:/bin",
		"HOME":               c.Home,
		"USER":               c.User,
		"LOGNAME":            c.User,
		"SHELL":              "/bin/sh",
		"SENDER":             "_odd_sender_@example.org",
		"RECIPIENT":          "bob+lists@example.org",
		"LOCAL":              "bob+lists",
		"DOMAIN":             "example.org",
		"EXTENSION":          "lists",
		"ORIGINAL_RECIPIENT": "Bob@Example.org",
		"CLIENT_ADDRESS":     "192.0.2.1",
		"CLIENT_HOSTNAME":    "mx.example.net",
		"CLIENT_HELO":        "mx.example.net",
		"CLIENT_PROTOCOL":    "ESMTP",
		"SASL_USERNAME":      "bob_rm_-rf_/",
		"TZ":                 "Europe/Berlin",
		"LANG":               "C.UTF-8",
		"PWD":                c.Home, // set by the shell
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok && k != "SHLVL" && k != "_" && k != "OLDPWD" {
			t.Errorf("unexpected variable %s=%q", k, got[k])
		}
	}
}

func TestOutput(t *testing.T) {
	t.Run("first line in the error", func(t *testing.T) {
		c := command(t, `printf '\n  first\tline\r\nsecond line\n' >&2; exit 67`)
		e := asError(t, Run(context.Background(), c, strings.NewReader(message)))
		if want := fmt.Sprintf("command %q: user unknown (exit 67): first line", c.Line); e.Error() != want {
			t.Errorf("Error() = %q, want %q", e.Error(), want)
		}
		if want := "   first line  second line "; e.Output != want {
			t.Errorf("Output = %q, want %q", e.Output, want)
		}
	})
	t.Run("limited", func(t *testing.T) {
		// Far more than a pipe holds: the command must not block on it.
		c := command(t, `head -c 1000000 /dev/zero | tr '\0' x; printf '\001'; exit 1`)
		e := asError(t, Run(context.Background(), c, strings.NewReader(message)))
		if len(e.Output) != DefaultOutputLimit || strings.Trim(e.Output, "x") != "" {
			t.Errorf("Output: %d bytes %.20q..., want %d x", len(e.Output), e.Output, DefaultOutputLimit)
		}
		if len(e.Error()) > 400 {
			t.Errorf("Error() is %d bytes long", len(e.Error()))
		}
		c.OutputLimit = 10
		e = asError(t, Run(context.Background(), c, strings.NewReader(message)))
		if e.Output != "xxxxxxxxxx" {
			t.Errorf("Output = %q with OutputLimit 10", e.Output)
		}
	})
	t.Run("unprintable", func(t *testing.T) {
		c := command(t, `printf 'a\033[31mb\377c\n'; exit 1`)
		e := asError(t, Run(context.Background(), c, strings.NewReader(message)))
		if e.Output != "a_[31mb_c " {
			t.Errorf("Output = %q", e.Output)
		}
	})
}

// gone waits until pid has exited (it may linger a moment as a zombie of
// whoever inherited it).
func gone(pid int) bool {
	for i := 0; i < 500; i++ {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		if _, rest, ok := strings.Cut(string(stat), ") "); ok && strings.HasPrefix(rest, "Z") {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	for i := 0; i < 500; i++ {
		if b, err := os.ReadFile(path); err == nil && strings.HasSuffix(string(b), "\n") {
			pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", path)
	return 0
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	c := command(t, `sleep 1000 & echo $! > sleep.pid; wait`)
	c.Timeout = time.Second
	e := asError(t, Run(context.Background(), c, strings.NewReader(message)))
	if e.DSN() != "5.3.0" || e.Temporary() || e.Reason != "command time limit exceeded" {
		t.Errorf("got %s temporary=%v %q, want 5.3.0 command time limit exceeded", e.DSN(), e.Temporary(), e.Reason)
	}
	if pid := readPid(t, filepath.Join(c.Home, "sleep.pid")); !gone(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the command's child %d survived the time limit", pid)
	}
}

// A background process that holds the command's output counts as part of
// the command; one that let go of it is left alone.
func TestBackgroundProcesses(t *testing.T) {
	t.Run("holding output", func(t *testing.T) {
		c := command(t, `sleep 1000 & echo $! > sleep.pid`)
		c.Timeout = time.Second
		e := asError(t, Run(context.Background(), c, strings.NewReader(message)))
		if e.DSN() != "5.3.0" {
			t.Errorf("got %v, want the time limit", e)
		}
		if pid := readPid(t, filepath.Join(c.Home, "sleep.pid")); !gone(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("background process %d survived the time limit", pid)
		}
	})
	t.Run("detached", func(t *testing.T) {
		c := command(t, `sleep 1000 </dev/null >/dev/null 2>&1 & echo $! > sleep.pid`)
		if err := Run(context.Background(), c, strings.NewReader(message)); err != nil {
			t.Fatal(err)
		}
		pid := readPid(t, filepath.Join(c.Home, "sleep.pid"))
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("detached background process was killed: %v", err)
		}
		syscall.Kill(pid, syscall.SIGKILL)
	})
}

func TestContextEnds(t *testing.T) {
	c := command(t, `sleep 1000 & echo $! > sleep.pid; wait`)
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		readPid(t, filepath.Join(c.Home, "sleep.pid"))
		cancel()
	}()
	e := asError(t, Run(ctx, c, strings.NewReader(message)))
	if e.DSN() != "4.3.0" || !e.Temporary() || !errors.Is(e, context.Canceled) {
		t.Errorf("got %s temporary=%v (%v), want 4.3.0 temporary, canceled", e.DSN(), e.Temporary(), e)
	}
	if pid := readPid(t, filepath.Join(c.Home, "sleep.pid")); !gone(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Errorf("the command's child %d survived", pid)
	}
}

type failingReader struct{ n int }

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n > 0 {
		return 0, errors.New("queue file unreadable")
	}
	r.n = copy(p, "Subject: cut\n\n")
	return r.n, nil
}

func TestMessageErrors(t *testing.T) {
	t.Run("unreadable message", func(t *testing.T) {
		e := asError(t, Run(context.Background(), command(t, "cat >/dev/null"), &failingReader{}))
		if e.DSN() != "4.3.0" || !e.Temporary() {
			t.Errorf("got %s (%v), want 4.3.0 temporary", e.DSN(), e)
		}
	})
	t.Run("command reads part", func(t *testing.T) {
		big := strings.Repeat("a long line of the message body\n", 100000)
		if err := Run(context.Background(), command(t, "head -n 1 >/dev/null"), strings.NewReader(big)); err != nil {
			t.Errorf("a command that stops reading early and exits 0: %v", err)
		}
	})
	t.Run("empty command", func(t *testing.T) {
		e := asError(t, Run(context.Background(), command(t, " "), strings.NewReader(message)))
		if e.DSN() != "4.3.5" {
			t.Errorf("got %v, want 4.3.5", e)
		}
	})
}

func TestRunsAsUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	c := command(t, `{ id -u; id -g; id -G; pwd; } > ids`)
	if err := Run(context.Background(), c, strings.NewReader(message)); err != nil {
		t.Fatal(err)
	}
	uid, gid := strconv.Itoa(c.Uid), strconv.Itoa(c.Gid)
	if got, want := readFile(t, filepath.Join(c.Home, "ids")), uid+"\n"+gid+"\n"+gid+"\n"+c.Home+"\n"; got != want {
		t.Errorf("uid, gid, groups, directory:\n%s\nwant\n%s", got, want)
	}

	t.Run("directory the user cannot enter", func(t *testing.T) {
		c := command(t, `pwd > "$HOME/pwd"`)
		c.Dir = t.TempDir()
		if err := os.Chmod(c.Dir, 0o700); err != nil { // root's
			t.Fatal(err)
		}
		if err := Run(context.Background(), c, strings.NewReader(message)); err != nil {
			t.Fatal(err)
		}
		if got := readFile(t, filepath.Join(c.Home, "pwd")); got != "/\n" {
			t.Errorf("working directory %q, want /", got)
		}
	})
	t.Run("root refused", func(t *testing.T) {
		c := command(t, "exit 0")
		c.Uid, c.Gid = 0, 0
		e := asError(t, Run(context.Background(), c, strings.NewReader(message)))
		if e.DSN() != "4.3.5" || !e.Temporary() {
			t.Errorf("got %v, want 4.3.5", e)
		}
	})
}
