package pop3

import (
	"bufio"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"yubin/internal/auth"
	"yubin/internal/maillog"
)

// Line limits: RFC 2449 §4 allows 255 octets per command; longer lines
// are refused without ending the session. AUTH responses may be longer.
const (
	maxLine     = 1024
	maxAuthLine = 8192
)

// errTooLong: a line over the limit (read and dropped).
var errTooLong = errors.New("line too long")

// session is one POP3 session.
type session struct {
	opts   *Options
	conn   net.Conn
	r      *bufio.Reader
	w      *bufio.Writer
	state  state
	tls    bool
	local  bool   // not TCP, or from a loopback address
	client string // the client's address for the log
	banner string // the APOP timestamp; "" when APOP is not offered

	userArg   string // USER's argument, waiting for PASS
	failures  int
	login     string // the name logged in
	md        *maildrop
	msgReader *bufio.Reader // reused for every RETR and TOP
	done      bool          // QUIT, or a reply that ends the session
	ending    string        // why the session ended, for the log
	stats     struct {
		retr, dele int
		bytes      int64
	}
}

func newSession(opts *Options, conn net.Conn) *session {
	s := &session{opts: opts, conn: conn, state: authorization, client: "local", local: true}
	if a, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
		s.client = a.IP.String()
		s.local = a.IP.IsLoopback()
	}
	s.setConn(conn)
	if opts.Users != nil && opts.Users.Virtual() && opts.Users.HasPlainSecrets() {
		var b [4]byte
		rand.Read(b[:])
		s.banner = fmt.Sprintf("<%d.%d%s@%s>", os.Getpid(), time.Now().UnixNano(), hex.EncodeToString(b[:]), opts.Hostname)
	}
	return s
}

func (s *session) setConn(c net.Conn) {
	s.conn = c
	s.r = bufio.NewReaderSize(c, 4096)
	s.w = bufio.NewWriterSize(c, 64<<10)
}

// serve is the command loop.
func (s *session) serve() (err error) {
	defer func() {
		if s.md != nil {
			s.md.close()
			if s.ending == "" {
				s.ending = "dropped"
			}
			left := 0
			for _, m := range s.md.msgs {
				if !m.delete || s.ending != "quit" {
					left++
				}
			}
			dele := s.stats.dele
			if s.ending != "quit" {
				dele = 0
			}
			maillog.Logout("pop3", s.login, s.client, s.ending, s.stats.retr, dele, left, s.stats.bytes)
		}
		s.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
		s.w.Flush()
		s.conn.Close()
	}()
	if s.opts.ImplicitTLS {
		if err := s.startTLS(); err != nil {
			return err
		}
	}
	greeting := "+OK " + s.opts.Hostname + " POP3 server ready"
	if s.banner != "" {
		greeting += " " + s.banner
	}
	s.reply(greeting)
	for !s.done {
		line, err := s.readLine(maxLine)
		switch {
		case errors.Is(err, errTooLong):
			s.reply("-ERR line too long")
			continue
		case isTimeout(err):
			s.ending = "timeout"
			s.reply("-ERR disconnected for inactivity")
			return nil
		case errors.Is(err, io.EOF):
			return nil
		case err != nil:
			return err
		}
		cmd, args, err := parseCommand(line)
		switch {
		case err != nil && cmd != nil:
			s.reply("-ERR " + cmd.name + ": " + err.Error())
		case err != nil:
			s.reply("-ERR " + err.Error())
		case cmd.states&s.state == 0:
			s.reply("-ERR " + cmd.name + " is not valid in this state")
		default:
			if err := cmd.run(s, args); err != nil {
				return err
			}
		}
	}
	return nil
}

// reply writes one response line; it is sent when the client has no more
// pipelined commands waiting (RFC 2449 PIPELINING), or at the end.
func (s *session) reply(line string) {
	s.w.WriteString(line)
	s.w.WriteString("\r\n")
}

// readLine reads a line of at most limit octets without its CRLF (or LF),
// flushing the replies first when no command is waiting.
func (s *session) readLine(limit int) (string, error) {
	if s.r.Buffered() == 0 {
		if err := s.w.Flush(); err != nil {
			return "", err
		}
	}
	s.conn.SetDeadline(time.Now().Add(s.opts.IdleTimeout))
	// The usual case: the whole line is in the buffer.
	if chunk, err := s.r.ReadSlice('\n'); err == nil && len(chunk) <= limit+2 {
		return strings.TrimSuffix(strings.TrimSuffix(string(chunk), "\n"), "\r"), nil
	} else if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
		return "", err
	} else if err == nil {
		return "", errTooLong
	} else if len(chunk) > limit+2 {
		return "", s.skipLine()
	} else {
		return s.longLine(append([]byte(nil), chunk...), limit)
	}
}

// skipLine drops the rest of a line over the limit.
func (s *session) skipLine() error {
	for {
		_, err := s.r.ReadSlice('\n')
		if err == nil {
			return errTooLong
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return err
		}
	}
}

// longLine reads the rest of a line longer than the reading buffer.
func (s *session) longLine(line []byte, limit int) (string, error) {
	tooLong := false
	for {
		chunk, err := s.r.ReadSlice('\n')
		if !tooLong {
			if len(line)+len(chunk) > limit+2 {
				tooLong, line = true, nil
			} else {
				line = append(line, chunk...)
			}
		}
		if err == nil {
			break
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			return "", err
		}
	}
	if tooLong {
		return "", errTooLong
	}
	return strings.TrimSuffix(strings.TrimSuffix(string(line), "\n"), "\r"), nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// passwordsAllowed: may a password cross this connection?
func (s *session) passwordsAllowed() bool {
	return s.tls || s.local || s.opts.PlaintextAuth
}

// startTLS runs the server side of a TLS handshake on the connection.
func (s *session) startTLS() error {
	tc := tls.Server(s.conn, s.opts.TLS)
	tc.SetDeadline(time.Now().Add(time.Minute))
	if err := tc.Handshake(); err != nil {
		maillog.ServerError("pop3", s.client, "", "TLS handshake: "+err.Error())
		return fmt.Errorf("TLS handshake: %w", err)
	}
	// Anything the client sent before the handshake is dropped with the
	// old reader: no command injection across STLS (RFC 2595 §4).
	s.setConn(tc)
	s.tls = true
	return nil
}

// stls is STLS (RFC 2595 §4).
func (s *session) stls(args []string) error {
	switch {
	case s.opts.TLS == nil:
		s.reply("-ERR STLS is not available")
		return nil
	case s.tls:
		s.reply("-ERR already using TLS")
		return nil
	}
	s.reply("+OK begin TLS negotiation")
	if err := s.w.Flush(); err != nil {
		return err
	}
	s.userArg = ""
	return s.startTLS()
}

// capa is CAPA (RFC 2449 §5).
func (s *session) capa(args []string) error {
	s.reply("+OK capability list follows")
	for _, c := range []string{"TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING"} {
		s.reply(c)
	}
	if s.state == authorization {
		if s.passwordsAllowed() {
			s.reply("USER")
			s.reply("SASL PLAIN")
		}
		if s.opts.TLS != nil && !s.tls {
			s.reply("STLS")
		}
	}
	s.reply("IMPLEMENTATION yubin")
	s.reply(".")
	return nil
}

// quit is QUIT in either state; in TRANSACTION it enters UPDATE.
func (s *session) quit(args []string) error {
	s.done = true
	if s.state != transaction {
		s.reply("+OK " + s.opts.Hostname + " POP3 server signing off")
		return nil
	}
	s.ending = "quit"
	removed, err := s.md.commit()
	if err != nil {
		maillog.ServerError("pop3", s.client, s.login, "update: "+err.Error())
		s.reply("-ERR [SYS/TEMP] some deleted messages not removed")
		return nil
	}
	s.reply(fmt.Sprintf("+OK %s POP3 server signing off (%d messages left)", s.opts.Hostname, len(s.md.msgs)-removed))
	return nil
}

// msg finds the message numbered arg, or answers -ERR.
func (s *session) msg(arg string) *message {
	n, ok := parseNumber(arg)
	if !ok || n < 1 || n > len(s.md.msgs) {
		s.reply("-ERR no such message")
		return nil
	}
	m := s.md.msgs[n-1]
	if m.delete {
		s.reply(fmt.Sprintf("-ERR message %d already deleted", n))
		return nil
	}
	return m
}

// count gives the messages not marked deleted and their size.
func (s *session) count() (n int, size int64) {
	for _, m := range s.md.msgs {
		if !m.delete {
			n++
			size += m.size
		}
	}
	return n, size
}

func (s *session) stat(args []string) error {
	n, size := s.count()
	s.reply(fmt.Sprintf("+OK %d %d", n, size))
	return nil
}

func (s *session) list(args []string) error {
	if len(args) == 1 {
		if m := s.msg(args[0]); m != nil {
			s.reply(fmt.Sprintf("+OK %s %d", args[0], m.size))
		}
		return nil
	}
	n, size := s.count()
	s.reply(fmt.Sprintf("+OK %d messages (%d octets)", n, size))
	for i, m := range s.md.msgs {
		if !m.delete {
			s.reply(fmt.Sprintf("%d %d", i+1, m.size))
		}
	}
	s.reply(".")
	return nil
}

func (s *session) uidl(args []string) error {
	if len(args) == 1 {
		if m := s.msg(args[0]); m != nil {
			s.reply(fmt.Sprintf("+OK %s %s", args[0], m.uid))
		}
		return nil
	}
	s.reply("+OK unique-id listing follows")
	for i, m := range s.md.msgs {
		if !m.delete {
			s.w.WriteString(fmt.Sprint(i+1, " ", m.uid, "\r\n"))
		}
	}
	s.reply(".")
	return nil
}

func (s *session) retr(args []string) error {
	m := s.msg(args[0])
	if m == nil {
		return nil
	}
	return s.send(m, -1)
}

func (s *session) top(args []string) error {
	lines, ok := parseNumber(args[1])
	if !ok {
		s.reply("-ERR the line count must be a number")
		return nil
	}
	m := s.msg(args[0])
	if m == nil {
		return nil
	}
	return s.send(m, lines)
}

// send writes message m, whole (bodyLines < 0) or for TOP.
func (s *session) send(m *message, bodyLines int) error {
	f, err := s.md.open(m)
	if err != nil {
		maillog.ServerError("pop3", s.client, s.login, err.Error())
		s.reply("-ERR [SYS/TEMP] the message cannot be read (removed by another program?)")
		return nil
	}
	defer f.Close()
	if bodyLines < 0 {
		s.reply(fmt.Sprintf("+OK %d octets", m.size))
	} else {
		s.reply("+OK top of message follows")
	}
	if s.msgReader == nil {
		s.msgReader = bufio.NewReaderSize(f, wireBuffer)
	} else {
		s.msgReader.Reset(f)
	}
	n, err := writeMessageBuffered(s.w, s.msgReader, bodyLines)
	if err != nil {
		// The response is broken midway: only a hang-up tells the
		// client; nothing is deleted.
		maillog.ServerError("pop3", s.client, s.login, err.Error())
		s.ending = "error"
		return err
	}
	s.stats.bytes += n
	if bodyLines < 0 {
		m.seen = true
		s.stats.retr++
	}
	return nil
}

func (s *session) dele(args []string) error {
	if m := s.msg(args[0]); m != nil {
		m.delete = true
		s.stats.dele++
		s.reply("+OK message " + args[0] + " deleted")
	}
	return nil
}

func (s *session) noop(args []string) error {
	s.reply("+OK")
	return nil
}

func (s *session) rset(args []string) error {
	for _, m := range s.md.msgs {
		m.delete = false
	}
	s.stats.dele = 0
	n, size := s.count()
	s.reply(fmt.Sprintf("+OK maildrop has %d messages (%d octets)", n, size))
	return nil
}

// A compile-time check that *auth.Directory is a Users.
var _ Users = (*auth.Directory)(nil)
