package pipe

import (
	"fmt"
	"regexp"
	"strings"
	"syscall"
	"unicode"
	"unicode/utf8"

	"yubin/internal/status"
)

// Error is a failed command delivery.
type Error struct {
	Command string // the command line
	Code    string // RFC 3463 enhanced status, "5.1.1"
	Reason  string // "user unknown", "command died with signal 9", ...
	// Output is what the command wrote to stdout and stderr, at most
	// Command.OutputLimit bytes, with tabs and newlines turned into spaces
	// and other unprintable characters into '_' (as Postfix puts it in the
	// bounce).
	Output string
	// Status is the exit status, or -1 when the command did not exit
	// (signal, time limit, not started).
	Status int
	Signal syscall.Signal // the signal that ended it, or 0
	Err    error          // an underlying error, if any

	firstLine string // the first non-empty line of Output, shortened
}

// Error gives the reason and the first line of the command's output.
func (e *Error) Error() string {
	s := fmt.Sprintf("command %q: %s", e.Command, e.Reason)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	if e.firstLine != "" {
		s += ": " + e.firstLine
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Temporary reports whether delivery may succeed later (a 4.x.x code).
func (e *Error) Temporary() bool { return e.Code == "" || e.Code[0] != '5' }

// DSN returns the enhanced status code, "x.y.z".
func (e *Error) DSN() string { return e.Code }

// classify maps how the command ended to an error, or nil for exit 0; out is
// the raw captured output. The order follows pipe_command.c: time limit,
// signal, an enhanced status code at the start of the output, a sysexits
// code, any other status.
func classify(line string, ws syscall.WaitStatus, out []byte) *Error {
	e := &Error{Command: line, Status: -1}
	e.setOutput(out)
	switch {
	case ws.Signaled():
		e.Signal = ws.Signal()
		e.Code = "4.3.0"
		e.Reason = fmt.Sprintf("command died with signal %d", int(e.Signal))
		return e
	case ws.ExitStatus() == 0:
		return nil
	}
	e.Status = ws.ExitStatus()
	if code, text, ok := leadingDSN(e.firstLine); ok {
		e.Code, e.Reason = code, text
		e.firstLine = ""
		return e
	}
	if x, ok := status.FromExit(e.Status); ok {
		e.Code = x.DSN
		e.Reason = fmt.Sprintf("%s (exit %d)", x.Text, e.Status)
		return e
	}
	e.Code = "5.3.0"
	e.Reason = fmt.Sprintf("command died with status %d", e.Status)
	return e
}

// dsnPrefix: "4.2.1 text" or "5.1.1" at the very start of the output, as
// Postfix's dsn_valid accepts it (class 4 or 5; class 2 makes no sense with a
// non-zero exit).
var dsnPrefix = regexp.MustCompile(`^([45]\.\d{1,3}\.\d{1,3})(?:\s+|$)`)

func leadingDSN(out string) (code, text string, ok bool) {
	m := dsnPrefix.FindStringSubmatch(out)
	if m == nil {
		return "", "", false
	}
	text = strings.TrimSpace(out[len(m[0]):])
	if text == "" {
		text = "command failed"
	}
	return m[1], text, true
}

// maxLine bounds the output line quoted in Error.
const maxLine = 256

func (e *Error) setOutput(out []byte) {
	e.Output = printable(string(out))
	first := string(out)
	for first != "" {
		l, rest, _ := strings.Cut(first, "\n")
		if l = strings.TrimSpace(printable(l)); l != "" {
			first = l
			break
		}
		first = rest
	}
	if len(first) > maxLine {
		n := maxLine
		for n > 0 && !utf8.RuneStart(first[n]) {
			n--
		}
		first = first[:n] + "..."
	}
	e.firstLine = first
}

// printable turns tabs, CR and newlines into spaces and other unprintable
// characters (and invalid UTF-8) into '_' (Postfix: translit, printable).
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case r == utf8.RuneError || !unicode.IsPrint(r):
			return '_'
		}
		return r
	}, s)
}
