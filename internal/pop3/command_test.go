package pop3

import (
	"strings"
	"testing"
)

func TestParseCommand(t *testing.T) {
	tests := []struct {
		name, line string
		cmd        string   // "" when no command is recognised
		args       []string // nil when none
		err        error
	}{
		{name: "stat", line: "STAT", cmd: "STAT"},
		{name: "lower case", line: "stat", cmd: "STAT"},
		{name: "mixed case", line: "uIdL 3", cmd: "UIDL", args: []string{"3"}},
		{name: "list optional", line: "LIST", cmd: "LIST"},
		{name: "list n", line: "LIST 1", cmd: "LIST", args: []string{"1"}},
		{name: "extra spaces", line: "TOP  1   10 ", cmd: "TOP", args: []string{"1", "10"}},
		{name: "pass with spaces", line: "PASS correct horse battery", cmd: "PASS", args: []string{"correct horse battery"}},
		{name: "pass leading space kept", line: "PASS  x", cmd: "PASS", args: []string{" x"}},
		{name: "pass empty", line: "PASS", cmd: "PASS", err: errArgCount},
		{name: "user", line: "USER alice@example.org", cmd: "USER", args: []string{"alice@example.org"}},
		{name: "user two args", line: "USER a b", cmd: "USER", err: errArgCount},
		{name: "apop", line: "APOP mrose c4c9334bac560ecc979e58001b3e22fb", cmd: "APOP", args: []string{"mrose", "c4c9334bac560ecc979e58001b3e22fb"}},
		{name: "auth bare", line: "AUTH", cmd: "AUTH"},
		{name: "auth ir", line: "AUTH PLAIN AGJvYgBzZWNyZXQ=", cmd: "AUTH", args: []string{"PLAIN", "AGJvYgBzZWNyZXQ="}},
		{name: "retr needs n", line: "RETR", cmd: "RETR", err: errArgCount},
		{name: "top needs two", line: "TOP 1", cmd: "TOP", err: errArgCount},
		{name: "stat no args", line: "STAT 1", cmd: "STAT", err: errArgCount},
		{name: "unknown", line: "XYZZY", err: errUnknown},
		{name: "prefix is not a command", line: "STATS", err: errUnknown},
		{name: "empty", line: "", err: errEmpty},
		{name: "leading space", line: " STAT", err: errEmpty},
		{name: "nul", line: "USER a\x00b", err: errBadChar},
		{name: "escape", line: "\x1b[2J", err: errBadChar},
		{name: "del", line: "NOOP\x7f", err: errBadChar},
		{name: "long argument", line: "USER " + strings.Repeat("a", 256), cmd: "USER", err: errArgLength},
		{name: "255 is fine", line: "USER " + strings.Repeat("a", 255), cmd: "USER", args: []string{strings.Repeat("a", 255)}},
	}
	for _, tt := range tests {
		cmd, args, err := parseCommand(tt.line)
		name := ""
		if cmd != nil {
			name = cmd.name
		}
		if name != tt.cmd || err != tt.err || strings.Join(args, "|") != strings.Join(tt.args, "|") || len(args) != len(tt.args) {
			t.Errorf("%s: parseCommand(%q) = %s %q %v; want %s %q %v", tt.name, tt.line, name, args, err, tt.cmd, tt.args, tt.err)
		}
	}
}

func TestParseNumber(t *testing.T) {
	for s, want := range map[string]int{"1": 1, "0": 0, "007": 7, "999999999": 999999999} {
		if n, ok := parseNumber(s); !ok || n != want {
			t.Errorf("parseNumber(%q) = %d, %v", s, n, ok)
		}
	}
	for _, s := range []string{"", "-1", "+1", "1a", " 1", "1e3", "0x1", "1000000000", "١"} {
		if n, ok := parseNumber(s); ok {
			t.Errorf("parseNumber(%q) = %d, true; want refused", s, n)
		}
	}
}

// FuzzCommand: no line crashes the parser, and what it accepts fits the
// table: a known keyword, an argument count in range, no control
// characters and no argument over the limit.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"STAT", "LIST 1", "PASS a b c", "TOP 1 0", "AUTH PLAIN =", "USER ../../etc/passwd", "\x00", "RETR -1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		cmd, args, err := parseCommand(line)
		if err != nil {
			return
		}
		if len(args) < cmd.minArgs || len(args) > cmd.maxArgs {
			t.Fatalf("%q: %s with %d arguments", line, cmd.name, len(args))
		}
		for _, a := range args {
			if len(a) > maxArgLen || strings.ContainsAny(a, "\x00\r\n") || (!cmd.rest && strings.ContainsAny(a, " \t")) {
				t.Fatalf("%q: bad argument %q", line, a)
			}
		}
		for _, a := range args {
			if n, ok := parseNumber(a); ok && n < 0 {
				t.Fatalf("%q: negative number", line)
			}
		}
	})
}
