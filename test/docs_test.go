package test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// readmeBlock returns the first ```sh block of README.md after heading.
func readmeBlock(t *testing.T, heading string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no heading %q", heading)
	}
	m := regexp.MustCompile("(?s)```sh\n(.*?)```").FindStringSubmatch(after)
	if m == nil {
		t.Fatalf("README.md: no sh block under %q", heading)
	}
	return m[1]
}

// The README's sendmail examples run as written, with the built programs
// first in PATH, and do what the text says.
func TestReadmeSendmailExamples(t *testing.T) {
	s := newSystem(t)
	script := readmeBlock(t, "## Using sendmail")
	cmd := exec.Command("sh", "-e", "-c", script)
	cmd.Env = append(os.Environ(), "YUBIN_CONF="+s.conf, "PATH="+binDir+":"+os.Getenv("PATH"))
	r := runCmd(t, cmd)
	if r.code != 0 {
		t.Fatalf("README example failed: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	envs := s.queue()
	if len(envs) != 2 {
		t.Fatalf("README example queued %d messages, want 2", len(envs))
	}
	if got := strings.Join(rcpts(envs[1]), " "); got != "alice@example.org audit@example.org" {
		t.Errorf("-t example queued for %q", got)
	}
	if raw := s.message(envs[1].ID); strings.Contains(raw, "Bcc:") {
		t.Errorf("-t example kept the Bcc:\n%s", raw)
	}
	for _, env := range envs {
		if !strings.Contains(r.stdout, env.ID) {
			t.Errorf("the example's mailq does not list %s:\n%s", env.ID, r.stdout)
		}
	}
}

// Every man page renders without a warning.
func TestManPagesRender(t *testing.T) {
	if _, err := exec.LookPath("groff"); err != nil {
		t.Skip("groff is not installed (scripts/test-deps installs groff-base as root)")
	}
	pages, _ := filepath.Glob("../man/*.[1-8]")
	if len(pages) < 3 {
		t.Fatalf("only %d man pages", len(pages))
	}
	for _, page := range pages {
		out, err := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", page).CombinedOutput()
		if err != nil || len(out) > 0 {
			t.Errorf("%s: %v\n%s", page, err, out)
		}
		text, err := exec.Command("groff", "-man", "-Tutf8", "-P-cbou", page).Output()
		if err != nil {
			t.Fatal(err)
		}
		for _, section := range []string{"NAME", "SYNOPSIS", "DESCRIPTION", "FILES", "SEE ALSO"} {
			if !regexp.MustCompile(`(?m)^` + section).Match(text) {
				t.Errorf("%s has no %s section", page, section)
			}
		}
	}
}
