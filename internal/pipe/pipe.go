// Package pipe delivers one message to a command named in an aliases or
// ~/.forward file (`|command`), as Postfix's local(8) does
// (src/local/command.c, src/global/pipe_command.c) and sendmail's prog
// mailer (`Mprog, P=/bin/sh, F=lsDFMoqeu9, D=$z:/, A=sh -c $u`).
//
// # Running
//
// The command line runs as `/bin/sh -c LINE`, in a new session (setsid, so
// also a new process group that can be killed whole, and no controlling
// terminal). When this process is root it runs as Command.Uid:Gid with the
// supplementary groups cleared; Uid or Gid 0 is refused then (Postfix's
// pipe_command panics on them: the caller maps root to default_privs, e.g.
// nobody). When this process is not root it runs as the process is, and
// Uid and Gid are ignored. The working directory is Command.Dir, else
// Command.Home, else /; one that the user cannot enter gives / (sendmail's
// D=$z:/).
//
// # Environment
//
// Only these variables, as local(8) sets them:
//
//	PATH                /usr/bin:/bin (_PATH_DEFPATH)
//	HOME, SHELL         the user's, when known
//	USER, LOGNAME       Command.User
//	SENDER              the envelope sender ("" for <>)
//	RECIPIENT           the final envelope recipient, local@domain
//	LOCAL, DOMAIN       its local part (left of the last @) and domain
//	EXTENSION           the address extension, when there is one
//	ORIGINAL_RECIPIENT  the recipient as it reached us, when known
//	CLIENT_ADDRESS, CLIENT_HOSTNAME, CLIENT_HELO, CLIENT_PROTOCOL,
//	SASL_USERNAME       about the SMTP client, when known
//	TZ, LANG            copied from ours when set (export_environment)
//
// In every value except PATH, TZ and LANG, characters outside Postfix's
// command_expansion_filter (letters, digits and !@%-_=+:,./) become '_', so
// no network data reaches the shell unfiltered.
//
// # Standard input
//
// The message as queued (LF line endings), byte for byte, after a prelude:
//
//	From sender Thu Nov 28 04:16:31 2024     unless Command.NoFromLine
//	Return-Path: <sender>
//	X-Original-To: original-recipient        when known
//	Delivered-To: final-recipient            when known
//
// This is what local(8) feeds a command (MAIL_COPY_FROM, _RETURN_PATH,
// _ORIG_RCPT, _DELIVERED) and sendmail's prog mailer too (it lacks the n
// flag, so sendmail's putfromline writes the From_ line): `|procmail`,
// `|vacation` and `|cat >>file` written for either expect the From_ line.
// NoFromLine gives Postfix pipe(8)'s default (no flag F). No ">From "
// quoting and no trailing empty line: those are for mailboxes. A command
// that stops reading early is not an error (EPIPE is ignored).
//
// # Outcome
//
// stdout and stderr are captured together, the first Command.OutputLimit
// bytes kept (default 4096, Postfix's VSTREAM_BUFSIZE) and the rest read
// and dropped. Run returns nil or an *Error, classified as pipe_command.c
// does, in this order:
//
//	time limit exceeded                          5.3.0  permanent
//	killed by a signal                           4.3.0  temporary
//	exit ≠ 0, output starts "4.x.y text"         4.x.y  temporary
//	exit ≠ 0, output starts "5.x.y text"         5.x.y  permanent
//	exit 64 EX_USAGE                             5.3.0  permanent
//	exit 65 EX_DATAERR                           5.6.0  permanent
//	exit 66 EX_NOINPUT                           5.3.0  permanent
//	exit 67 EX_NOUSER                            5.1.1  permanent
//	exit 68 EX_NOHOST                            5.1.2  permanent
//	exit 69 EX_UNAVAILABLE                       5.3.0  permanent
//	exit 70 EX_SOFTWARE                          5.3.0  permanent
//	exit 71 EX_OSERR                             4.3.0  temporary
//	exit 72 EX_OSFILE                            5.3.0  permanent
//	exit 73 EX_CANTCREAT                         5.2.0  permanent
//	exit 74 EX_IOERR                             5.3.0  permanent
//	exit 75 EX_TEMPFAIL                          4.3.0  temporary
//	exit 76 EX_PROTOCOL                          5.5.0  permanent
//	exit 77 EX_NOPERM                            5.7.0  permanent
//	exit 78 EX_CONFIG                            5.3.5  permanent
//	any other exit ≠ 0 (1, 126, 127 not found)   5.3.0  permanent
//	exit 0                                       delivered (nil)
//
// Ours, not the command's, and all temporary: the command could not be
// started (fork, /bin/sh) 4.3.0; reading the message failed 4.3.0 (the
// command saw a cut message); ctx ended first (the daemon is stopping)
// 4.3.0; writing to the command failed other than EPIPE 4.3.0 (Postfix
// bounces that one); Uid or Gid 0 as root or an empty command 4.3.5.
//
// The time limit (Command.Timeout, default 1000 s, Postfix's
// command_time_limit) covers the whole delivery: writing the message,
// reading the output to its end, and the exit. When it passes, the whole
// process group gets SIGKILL and the message bounces, as Postfix does
// (PIPE_STAT_BOUNCE, "Command time limit exceeded"): a command that hung
// once will hang again, and retrying would repeat its side effects every
// time. A background process that keeps the command's stdout or stderr
// open counts as part of the command; one that closed them is left alone.
//
// A signal is temporary because pipe_command.c says so (PIPE_STAT_DEFER,
// "Command died with signal"): the OOM killer or an administrator's kill
// says nothing about the message. (Postfix itself gives that deferral the
// code 5.3.0, which since Postfix 2.3 local(8) turns into a bounce; we keep
// the stated verdict and give it 4.3.0.)
package pipe

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"yubin/internal/mbox"
)

// Defaults: Postfix's command_time_limit and its output buffer.
const (
	DefaultTimeout     = 1000 * time.Second
	DefaultOutputLimit = 4096
)

// Command is one delivery to a command.
type Command struct {
	// Line is the shell command, without the leading '|'.
	Line string
	// Uid and Gid are the user the command runs as when the process is
	// root (then both must be non-zero); ignored otherwise.
	Uid, Gid int
	// User is USER and LOGNAME; Home is HOME; Shell is SHELL.
	User, Home, Shell string
	// Dir is the working directory; "" means Home, and / when that is ""
	// too or cannot be entered.
	Dir string
	// Envelope gives SENDER, RECIPIENT (with LOCAL and DOMAIN),
	// ORIGINAL_RECIPIENT, and the prelude on stdin.
	Envelope mbox.Envelope
	// Extension is EXTENSION: the part of the recipient's local part after
	// the recipient delimiter; "" leaves it out.
	Extension string
	// The SMTP client, for CLIENT_ADDRESS, CLIENT_HOSTNAME, CLIENT_HELO,
	// CLIENT_PROTOCOL and SASL_USERNAME; each "" leaves its variable out.
	ClientAddress, ClientHostname, ClientHelo, ClientProtocol, SASLUsername string
	// NoFromLine leaves the From_ line out of the prelude.
	NoFromLine bool
	// Timeout is the time limit; zero means DefaultTimeout.
	Timeout time.Duration
	// OutputLimit is how many bytes of output are kept; zero means
	// DefaultOutputLimit.
	OutputLimit int
}

// Run delivers msg (LF line endings, as queued) to the command and waits
// for it. It returns nil when the command exited 0, else an *Error. When ctx
// ends first, the command's process group is killed and the error is
// temporary.
func Run(ctx context.Context, c Command, msg io.Reader) error {
	fail := func(code, reason string, err error) error {
		return &Error{Command: c.Line, Code: code, Reason: reason, Status: -1, Err: err}
	}
	if strings.TrimSpace(c.Line) == "" {
		return fail("4.3.5", "mail system configuration error: empty command", nil)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	limit := c.OutputLimit
	if limit <= 0 {
		limit = DefaultOutputLimit
	}
	attr := &syscall.SysProcAttr{Setsid: true}
	if os.Geteuid() == 0 {
		if c.Uid <= 0 || c.Gid <= 0 {
			return fail("4.3.5", "mail system configuration error: refusing to run a command as root", nil)
		}
		attr.Credential = &syscall.Credential{Uid: uint32(c.Uid), Gid: uint32(c.Gid), Groups: []uint32{}}
	}

	inR, inW, err := os.Pipe()
	if err != nil {
		return fail("4.3.0", "system resource problem", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return fail("4.3.0", "system resource problem", err)
	}
	env := c.environ()
	start := func(dir string) (*exec.Cmd, error) {
		cmd := &exec.Cmd{
			Path: "/bin/sh", Args: []string{"sh", "-c", c.Line},
			Env: env, Dir: dir,
			Stdin: inR, Stdout: outW, Stderr: outW,
			SysProcAttr: attr,
		}
		return cmd, cmd.Start()
	}
	dir := c.Dir
	if dir == "" {
		dir = c.Home
	}
	if dir == "" {
		dir = "/"
	}
	cmd, err := start(dir)
	if err != nil && dir != "/" {
		// Most likely the user cannot enter dir (chdir runs after the
		// switch to the user); sendmail's D=$z:/ falls back to /.
		cmd, err = start("/")
	}
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return fail("4.3.0", "cannot run command", err)
	}
	pid := cmd.Process.Pid

	// abort ends the delivery early: the process group dies and our ends of
	// the pipes stop waiting.
	var (
		mu     sync.Mutex
		reason string
	)
	abort := func(why string) {
		mu.Lock()
		defer mu.Unlock()
		if reason != "" {
			return
		}
		reason = why
		syscall.Kill(-pid, syscall.SIGKILL)
		past := time.Unix(1, 0)
		inW.SetWriteDeadline(past)
		outR.SetReadDeadline(past)
	}
	timer := time.AfterFunc(timeout, func() { abort("timeout") })
	stopCtx := context.AfterFunc(ctx, func() { abort("interrupted") })

	var (
		wg                sync.WaitGroup
		readErr, writeErr error
		out               []byte
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer inW.Close()
		readErr, writeErr = feed(inW, c.prelude(), msg)
	}()
	go func() {
		defer wg.Done()
		defer outR.Close()
		out = readLimited(outR, limit)
	}()
	state, waitErr := cmd.Process.Wait()
	wg.Wait()
	timer.Stop()
	stopCtx()

	mu.Lock()
	why := reason
	mu.Unlock()
	switch {
	case why == "timeout":
		e := &Error{Command: c.Line, Code: "5.3.0", Reason: "command time limit exceeded", Status: -1}
		e.setOutput(out)
		return e
	case why == "interrupted":
		return fail("4.3.0", "delivery interrupted", ctx.Err())
	case waitErr != nil:
		return fail("4.3.0", "cannot wait for command", waitErr)
	case readErr != nil:
		return fail("4.3.0", "error reading message", readErr)
	}
	if e := classify(c.Line, state.Sys().(syscall.WaitStatus), out); e != nil {
		return e
	}
	if writeErr != nil && !errors.Is(writeErr, syscall.EPIPE) {
		return fail("4.3.0", "error writing message to command", writeErr)
	}
	return nil
}

// readLimited reads r to its end (or error), keeping the first limit bytes.
func readLimited(r io.Reader, limit int) []byte {
	out := make([]byte, 0, min(limit, 4096))
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		if keep := min(n, limit-len(out)); keep > 0 {
			out = append(out, buf[:keep]...)
		}
		if err != nil {
			return out
		}
	}
}

// environ builds the command's whole environment.
func (c Command) environ() []string {
	env := []string{"PATH=/usr/bin:/bin"}
	add := func(name, value string, always bool) {
		if value != "" || always {
			env = append(env, name+"="+filter(value))
		}
	}
	rcpt := c.Envelope.Recipient
	local, domain := rcpt, ""
	if i := strings.LastIndexByte(rcpt, '@'); i >= 0 {
		local, domain = rcpt[:i], rcpt[i+1:]
	}
	add("HOME", c.Home, false)
	add("LOGNAME", c.User, true)
	add("USER", c.User, true)
	add("SENDER", c.Envelope.Sender, true)
	add("RECIPIENT", rcpt, true)
	add("LOCAL", local, true)
	add("SHELL", c.Shell, false)
	add("DOMAIN", domain, false)
	add("EXTENSION", c.Extension, false)
	add("ORIGINAL_RECIPIENT", c.Envelope.OriginalRecipient, false)
	add("CLIENT_HOSTNAME", c.ClientHostname, false)
	add("CLIENT_ADDRESS", c.ClientAddress, false)
	add("CLIENT_HELO", c.ClientHelo, false)
	add("CLIENT_PROTOCOL", c.ClientProtocol, false)
	add("SASL_USERNAME", c.SASLUsername, false)
	for _, name := range []string{"TZ", "LANG"} {
		if v, ok := os.LookupEnv(name); ok {
			env = append(env, name+"="+v)
		}
	}
	return env
}

// filter replaces characters outside Postfix's command_expansion_filter.
func filter(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
			return r
		case strings.ContainsRune("!@%-_=+:,./", r):
			return r
		}
		return '_'
	}, s)
}

// prelude is what goes before the message on stdin.
func (c Command) prelude() string {
	if c.NoFromLine {
		return c.Envelope.Header()
	}
	return c.Envelope.FromLine() + c.Envelope.Header()
}

// feed writes the prelude and the message to w, and tells a failure to read
// the message from a failure to write it.
func feed(w io.Writer, prelude string, msg io.Reader) (readErr, writeErr error) {
	if _, err := io.WriteString(w, prelude); err != nil {
		return nil, err
	}
	buf := make([]byte, 32<<10)
	for {
		n, err := msg.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil, werr
			}
		}
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return err, nil
		}
	}
}
