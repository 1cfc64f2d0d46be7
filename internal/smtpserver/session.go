package smtpserver

import (
	"bufio"
	"errors"
	"io"
	"net"
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
	wire   *wireConn // nil only under a test's bare go-smtp server
	client client

	authUser     string // the AUTH identity, once authenticated
	authMech     string // the SASL mechanism it used
	authFailures int

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
	switch {
	case s.wire != nil && s.wire.isDraining():
		return s.closing(replyShutdown, "shutdown")
	case s.env != nil:
		return s.fail(replyNestedMail) // RFC 5321 §4.1.4: MAIL only after RSET or DATA
	case !validAddress(from):
		return s.fail(replyBadSender)
	case !opts.UTF8 && !isASCII(from):
		return s.fail(replyNeedUTF8)
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
	if l := s.b.options().Local; l != nil {
		env.User = l.Name
	} else {
		env.User = s.authUser
	}
	s.env = env
	return nil
}

// Rcpt adds a recipient (RCPT TO). go-smtp has parsed the path and NOTIFY
// and ORCPT, and refused recipients beyond MaxRecipients with 452 4.5.3.
func (s *session) Rcpt(to string, opts *smtp.RcptOptions) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.b.options()
	var err error
	switch {
	case s.env == nil:
		err = replyNeedMail
	case to == "" || !validAddress(to):
		err = replyBadRecipient
	case !s.env.SMTPUTF8 && !isASCII(to):
		err = replyNeedUTF8
	case len(s.env.Recipients) >= o.MaxRecipients:
		err = replyTooManyRcpts
	default:
		err = s.checkRcpt(o, to)
	}
	if err != nil {
		var reply *smtp.SMTPError
		if errors.As(err, &reply) && s.env != nil {
			maillog.Reject("RCPT", s.client.name, s.client.addr, line(reply), s.logProto(), s.env.From, to, s.conn.Hostname())
		}
		return s.fail(err)
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
		return s.fail(replyNeedRcpt)
	}
	if s.wire != nil {
		s.wire.setData(true)
		defer s.wire.setData(false)
	}
	o := s.b.options()
	env.Arrival = o.Now()
	q := o.Queue
	w, err := q.Create(env)
	if err != nil {
		s.logError(err)
		return s.fail(replyQueueFailed)
	}
	msgID, err := writeMessage(w, received(env, o.Hostname, o.Local), r)
	if err != nil {
		w.Abort()
		var werr *writeError
		var nerr net.Error
		switch {
		case errors.As(err, &werr):
			s.logError(err)
			return s.fail(replyQueueFailed)
		case errors.Is(err, smtp.ErrDataTooLarge):
			maillog.Reject("DATA", s.client.name, s.client.addr, line(replyTooBig), s.logProto(), env.From, "", s.conn.Hostname())
			return s.fail(replyTooBig)
		case errors.Is(err, smtp.ErrTooLongLine):
			return s.fail(replyLineTooLong)
		case errors.As(err, &nerr) && nerr.Timeout():
			return s.closing(replyTimeout, "timeout")
		default:
			return s.fail(replyLostData)
		}
	}
	commit := w.Commit
	if s.b.group != nil {
		commit = func() error { return s.b.group.Commit(w) }
	}
	if err := commit(); err != nil {
		s.logError(err)
		return s.fail(replyQueueFailed)
	}
	if l := o.Local; l != nil {
		maillog.Pickup(w.ID(), l.UID, env.From)
	} else {
		maillog.Received(w.ID(), env.ClientName, env.Client, s.authMech, s.authUser)
	}
	maillog.MessageID(w.ID(), msgID)
	if s.wire != nil {
		s.wire.msgs.Add(1)
	}
	q.Wake(w.ID())
	return replyQueued(w.ID())
}

// fail returns the error reply err, counting it where wireConn cannot see
// it (inside TLS): past MaxErrors the reply is 421 and the session ends.
func (s *session) fail(err error) error {
	if s.wire != nil && !s.wire.plain.Load() && s.wire.countError() {
		return s.closing(replyTooManyErrors, "too-many-errors")
	}
	return err
}

// closing returns a 421 reply after which the connection is closed.
func (s *session) closing(reply *smtp.SMTPError, result string) error {
	if s.wire != nil {
		s.wire.setResult(result)
		s.wire.closeAfter.Store(true)
	}
	return reply
}

// Reset ends the transaction (RSET, a new HELO/EHLO, after DATA).
func (s *session) Reset() {
	s.mu.Lock()
	s.env = nil
	s.mu.Unlock()
}

// Logout is called when the connection closes.
func (s *session) Logout() error { return nil }

// proto is the envelope's protocol, as RFC 3848 names it: ESMTP after
// EHLO, SMTP after HELO, with S inside TLS and A after AUTH (ESMTPSA).
func (s *session) proto() string {
	p := "ESMTP"
	if s.wire != nil && s.wire.plain.Load() && !s.wire.ehlo() {
		p = "SMTP"
	}
	if _, isTLS := s.conn.TLSConnectionState(); isTLS {
		p += "S"
	}
	if s.authUser != "" {
		p += "A"
	}
	return p
}

// logProto is the protocol as Postfix logs it (proto=): SMTP or ESMTP,
// without RFC 3848's S for TLS and A for AUTH.
func (s *session) logProto() string { return strings.TrimRight(s.proto(), "SA") }

// logError reports what the client is not told: why the queue failed.
func (s *session) logError(err error) {
	maillog.ServerError("smtp", s.clientForLog(), s.authUser, err.Error())
}

func (s *session) clientForLog() string {
	if l := s.b.options().Local; l != nil {
		return "local user=" + l.Name
	}
	return s.client.addr
}

// writeMessage writes the Received header and then the message from r into
// w with LF line endings, and returns the message's Message-ID, or "". An
// error writing to w is a *writeError; any other comes from r.
func writeMessage(w io.Writer, header string, r io.Reader) (string, error) {
	br := bufio.NewReader(r)
	tap := &headerTap{w: w}
	if b, err := br.Peek(1); err == nil && (b[0] == ' ' || b[0] == '\t') {
		// A message starting with white space would continue our
		// header: an empty line makes it all body, as Postfix does.
		header += "\n"
		tap.done = true
	}
	if _, err := io.WriteString(w, header); err != nil {
		return "", &writeError{err}
	}
	lf := &lfWriter{w: tap}
	_, err := io.Copy(lf, br)
	if err == nil {
		err = lf.Flush()
	}
	return tap.messageID(), err
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
