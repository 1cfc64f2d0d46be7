package smtpserver

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/emersion/go-smtp"

	"yubin/internal/maillog"
	"yubin/internal/queue"
)

// session is one client's conversation, from HELO/EHLO to QUIT. go-smtp
// has checked each command's syntax and sequence before calling a method;
// one method per command.
type session struct {
	b      *Backend
	conn   *smtp.Conn
	client client

	// mu guards env: with BDAT, go-smtp runs Data in a goroutine of its
	// own while RSET may call Reset.
	mu  sync.Mutex
	env *queue.Envelope // the transaction begun by MAIL; nil outside one
}

var _ smtp.Session = (*session)(nil)

// Mail starts a transaction (MAIL FROM). go-smtp has parsed the path and
// the parameters, and refused a SIZE over the limit with 552 5.3.4.
func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.env != nil {
		return replyNestedMail // RFC 5321 §4.1.4: MAIL only after RSET or DATA
	}
	if !validAddress(from) {
		return replyBadSender
	}
	if !opts.UTF8 && !isASCII(from) {
		return replyNeedUTF8
	}
	env := &queue.Envelope{
		From:       from,
		Client:     s.client.addr,
		ClientName: s.client.name,
		Helo:       s.conn.Hostname(),
		Proto:      s.proto(),
		EnvID:      opts.EnvelopeID,
		Ret:        string(opts.Return),
		Body:       string(opts.Body),
		SMTPUTF8:   opts.UTF8,
	}
	if l := s.b.opts.Local; l != nil {
		env.User = l.Name
	}
	s.env = env
	return nil
}

// Rcpt adds a recipient (RCPT TO). go-smtp has parsed the path and NOTIFY
// and ORCPT, and refused recipients beyond MaxRecipients with 452 4.5.3.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.env == nil:
		return replyNeedMail
	case to == "" || !validAddress(to):
		return replyBadRecipient
	case !s.env.SMTPUTF8 && !isASCII(to):
		return replyNeedUTF8
	case len(s.env.Recipients) >= s.b.opts.MaxRecipients:
		return replyTooManyRcpts
	case s.b.opts.Local == nil && !s.b.acceptsDomain(to):
		return replyRelay
	}
	rc := &queue.Recipient{Addr: to}
	if len(opts.Notify) > 0 {
		n := make([]string, len(opts.Notify))
		for i, v := range opts.Notify {
			n[i] = string(v)
		}
		rc.Notify = strings.Join(n, ",")
	}
	if opts.OriginalRecipient != "" {
		// Kept as "type;address", xtext decoded by go-smtp, the form of a
		// DSN's Original-Recipient field (RFC 3464 §2.3.1).
		rc.ORCPT = strings.ToLower(string(opts.OriginalRecipientType)) + ";" + opts.OriginalRecipient
	}
	s.env.Recipients = append(s.env.Recipients, rc)
	return nil
}

// Data receives the message (DATA, or BDAT chunks) and queues it. r yields
// the message as the client sent it, CRLF line endings, dot-stuffing
// already undone, and fails with smtp.ErrDataTooLarge past MaxMessageBytes.
// go-smtp writes what Data returns as the reply and then reads whatever
// of the message is left.
func (s *session) Data(r io.Reader) error {
	s.mu.Lock()
	env := s.env
	s.mu.Unlock()
	if env == nil || len(env.Recipients) == 0 {
		return replyNeedRcpt
	}
	env.Arrival = s.b.opts.Now()
	q := s.b.opts.Queue
	w, err := q.Create(env)
	if err != nil {
		s.logError(err)
		return replyQueueFailed
	}
	size, err := writeMessage(w, received(env, s.b.opts.Hostname, s.b.opts.Local), r)
	if err != nil {
		w.Abort()
		var werr *writeError
		switch {
		case errors.As(err, &werr):
			s.logError(err)
			return replyQueueFailed
		case errors.Is(err, smtp.ErrDataTooLarge):
			return replyTooBig
		case errors.Is(err, smtp.ErrTooLongLine):
			return replyLineTooLong
		default:
			return replyLostData
		}
	}
	if err := w.Commit(); err != nil {
		s.logError(err)
		return replyQueueFailed
	}
	maillog.Queued(w.ID(), env.From, len(env.Recipients), size, env.Client, env.User)
	q.Wake(w.ID())
	return replyQueued(w.ID())
}

// Reset ends the transaction (RSET, a new HELO/EHLO, after DATA).
func (s *session) Reset() {
	s.mu.Lock()
	s.env = nil
	s.mu.Unlock()
}

// Logout is called when the connection closes.
func (s *session) Logout() error { return nil }

// proto is the envelope's protocol: ESMTP after EHLO, SMTP after HELO.
// (Issue 5 adds S for TLS and A for AUTH.)
func (s *session) proto() string {
	if wc, ok := s.conn.Conn().(*wireConn); ok && !wc.ehlo() {
		return "SMTP"
	}
	return "ESMTP"
}

// logError reports what the client is not told: why the queue failed.
// TODO: a maillog event for it; maillog has only Queued so far.
func (s *session) logError(err error) {
	s.conn.Server().ErrorLog.Printf("client=%s helo=%q: %v", s.clientForLog(), s.conn.Hostname(), err)
}

func (s *session) clientForLog() string {
	if l := s.b.opts.Local; l != nil {
		return "local user=" + l.Name
	}
	return s.client.addr
}

// writeMessage writes the Received header and then the message from r into
// w with LF line endings, and returns the bytes written. An error writing
// to w is a *writeError; any other comes from r.
func writeMessage(w io.Writer, header string, r io.Reader) (int64, error) {
	br := bufio.NewReader(r)
	if b, err := br.Peek(1); err == nil && (b[0] == ' ' || b[0] == '\t') {
		// A message starting with white space would continue our
		// header: an empty line makes it all body, as Postfix does.
		header += "\n"
	}
	if _, err := io.WriteString(w, header); err != nil {
		return 0, &writeError{err}
	}
	lf := &lfWriter{w: w}
	_, err := io.Copy(lf, br)
	if err == nil {
		err = lf.Flush()
	}
	return int64(len(header)) + lf.n, err
}

// validAddress reports whether an address from MAIL or RCPT is fit to be
// stored and written into headers: valid UTF-8, no control characters.
// ("" is the null reverse-path.) go-smtp has checked the rest of its form.
func validAddress(a string) bool {
	for _, r := range a {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
