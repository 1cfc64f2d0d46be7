package submit

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"time"

	"yubin/internal/address"
	"yubin/internal/maillog"
	"yubin/internal/queue"
)

// User is the local user who runs sendmail.
type User struct {
	Name     string // login name
	UID      int
	FullName string // from the password database's GECOS field
}

// CurrentUser is the user who runs the program: the real uid, not the
// setgid group. The static sendmail reads only /etc/passwd; a user known
// only to other name services (LDAP) is named by LOGNAME, else "uidN". The
// name is no credential (any user may set the sender with -f); the uid,
// which the Received header records, is.
func CurrentUser() User {
	uid := os.Getuid()
	u := User{Name: "uid" + strconv.Itoa(uid), UID: uid}
	if pw, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		u.Name = pw.Username
		u.FullName = pw.Name
	} else if name, err := address.Parse(os.Getenv("LOGNAME")); err == nil && !strings.Contains(name, "@") {
		u.Name = name
	}
	return u
}

// Submission is one run of sendmail in its default mode: a message on stdin
// into the queue.
type Submission struct {
	Options  *Options
	User     User
	Hostname string // qualifies bare names, names this host in headers
	Queue    *queue.Queue
	MaxSize  int64 // message_size_limit; 0 for none
	Now      func() time.Time
}

// Errors of a submission, by the exit status they call for.
var (
	// ErrNoRecipients: nothing to deliver to (EX_USAGE, as Postfix).
	ErrNoRecipients = errors.New("no recipient addresses")
)

// AddressError is a recipient or sender that cannot be used (EX_NOUSER).
type AddressError struct{ Err error }

func (e *AddressError) Error() string { return e.Err.Error() }
func (e *AddressError) Unwrap() error { return e.Err }

// QueueError is a failure to write the queue (EX_TEMPFAIL): the message was
// not accepted and the caller should try again.
type QueueError struct{ Err error }

func (e *QueueError) Error() string { return e.Err.Error() }
func (e *QueueError) Unwrap() error { return e.Err }

// Run reads the message from r and commits it to the queue. It returns the
// queue ID only once the message is durable. A header that cannot be used is
// an error wrapping the message's problem (EX_DATAERR); ErrTooBig likewise.
func (s *Submission) Run(r io.Reader) (string, error) {
	o := s.Options
	msg, err := ReadMessage(r, o.IgnoreDots, s.MaxSize)
	if err != nil {
		return "", err
	}
	rcpts := o.Recipients
	if o.ExtractRecipients {
		// Postfix adds the header recipients to those on the command
		// line; sendmail 8 would drop the command line's instead.
		hdr, err := msg.Recipients()
		if err != nil {
			return "", err
		}
		rcpts = append(append([]string(nil), rcpts...), hdr...)
		msg.RemoveBcc()
	}
	env := &queue.Envelope{
		Proto: "local",
		User:  s.User.Name,
		EnvID: o.EnvID,
		Ret:   o.Ret,
		Body:  o.Body,
	}
	if env.Body == "" && msg.Has8Bit() {
		env.Body = "8BITMIME"
	}
	if env.Recipients, err = s.recipients(rcpts); err != nil {
		return "", err
	}
	if env.From, err = s.sender(); err != nil {
		return "", err
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	env.Arrival = now()

	w, err := s.Queue.Create(env)
	if err != nil {
		return "", &QueueError{err}
	}
	defer w.Abort()
	msg.AddIfMissing("From", s.fromHeader(env.From))
	msg.AddIfMissing("Date", DateHeader(env.Arrival))
	msg.AddIfMissing("Message-ID", MessageID(w.ID(), s.Hostname))
	single := ""
	if len(env.Recipients) == 1 {
		single = env.Recipients[0].Addr
	}
	msg.Prepend("Received", Received(s.Hostname, s.User.UID, w.ID(), env.Arrival, single))
	if _, err := msg.WriteTo(w); err != nil {
		return "", &QueueError{err}
	}
	if err := w.Commit(); err != nil {
		return "", &QueueError{err}
	}
	maillog.Pickup(w.ID(), s.User.UID, env.From)
	maillog.MessageID(w.ID(), msg.Get("Message-ID"))
	s.Queue.Wake(w.ID())
	return w.ID(), nil
}

// recipients parses and qualifies the recipients, dropping repeats.
func (s *Submission) recipients(list []string) ([]*queue.Recipient, error) {
	var out []*queue.Recipient
	seen := make(map[string]bool)
	for _, r := range list {
		a, err := address.Parse(r)
		if err != nil {
			return nil, &AddressError{fmt.Errorf("recipient %w", err)}
		}
		a = address.Qualify(a, s.Hostname)
		if key := strings.ToLower(a); !seen[key] {
			seen[key] = true
			out = append(out, &queue.Recipient{Addr: a, Notify: s.Options.Notify})
		}
	}
	if len(out) == 0 {
		return nil, ErrNoRecipients
	}
	return out, nil
}

// sender is the envelope sender: -f or -r, else the invoking user.
func (s *Submission) sender() (string, error) {
	o := s.Options
	if !o.SenderSet {
		return address.Qualify(s.User.Name, s.Hostname), nil
	}
	if o.Sender == "" || o.Sender == "<>" {
		return "", nil
	}
	a, err := address.Parse(o.Sender)
	if err != nil {
		return "", &AddressError{fmt.Errorf("sender %w", err)}
	}
	return address.Qualify(a, s.Hostname), nil
}

// fromHeader is the From: field for a message that has none: the envelope
// sender, as sendmail 8 and Postfix write it, with the -F name or, when the
// sender is the user's own address, the user's name from the password file.
func (s *Submission) fromHeader(sender string) string {
	if sender == "" {
		return "MAILER-DAEMON@" + s.Hostname
	}
	name := s.Options.FullName
	if name == "" && !s.Options.SenderSet {
		name = s.User.FullName
	}
	return FromHeader(name, sender)
}
