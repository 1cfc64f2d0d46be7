package pop3

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-sasl"

	"yubin/internal/auth"
	"yubin/internal/mailbox"
	"yubin/internal/maillog"
)

// The answers to logins (RFC 2449 §8 response codes). A failed login reads
// the same whatever failed.
const (
	replyAuthFailed = "-ERR [AUTH] authentication failed"
	replyPlaintext  = "-ERR [AUTH] plaintext authentication is disallowed without TLS (use STLS)"
	replyInUse      = "-ERR [IN-USE] the maildrop is in use by another session"
	replyTemp       = "-ERR [SYS/TEMP] the maildrop cannot be opened now, try again later"
)

func (s *session) user(args []string) error {
	if !s.passwordsAllowed() {
		s.reply(replyPlaintext)
		return nil
	}
	// Any name is "+OK": the reply never says whether the user exists.
	s.userArg = args[0]
	s.reply("+OK send PASS")
	return nil
}

func (s *session) pass(args []string) error {
	if !s.passwordsAllowed() {
		s.reply(replyPlaintext)
		return nil
	}
	if s.userArg == "" {
		s.reply("-ERR USER first")
		return nil
	}
	name := s.userArg
	s.userArg = ""
	return s.loginPassword(name, args[0], "USER")
}

// auth is AUTH (RFC 5034): without arguments it lists the mechanisms, as
// many clients expect of it; PLAIN is the one mechanism.
func (s *session) auth(args []string) error {
	if len(args) == 0 {
		s.reply("+OK mechanisms follow")
		if s.passwordsAllowed() {
			s.reply("PLAIN")
		}
		s.reply(".")
		return nil
	}
	if !strings.EqualFold(args[0], sasl.Plain) {
		s.reply("-ERR unrecognized authentication mechanism")
		return nil
	}
	if !s.passwordsAllowed() {
		s.reply(replyPlaintext)
		return nil
	}
	var resp []byte
	if len(args) == 2 {
		resp = []byte(args[1]) // "=" is an empty initial response (RFC 5034 §4)
	} else {
		s.reply("+ ")
		line, err := s.readLine(maxAuthLine)
		if errors.Is(err, errTooLong) {
			s.reply("-ERR line too long")
			return nil
		}
		if err != nil {
			return err
		}
		if line == "*" {
			s.reply("-ERR authentication cancelled")
			return nil
		}
		resp = []byte(line)
	}
	if string(resp) == "=" {
		resp = nil
	}
	decoded, err := base64.StdEncoding.DecodeString(string(resp))
	if err != nil {
		s.reply("-ERR invalid base64 in the response")
		return nil
	}
	var identity, username, password string
	server := sasl.NewPlainServer(func(id, user, pass string) error {
		identity, username, password = id, user, pass
		return nil
	})
	if _, _, err := server.Next(append([]byte{}, decoded...)); err != nil || (identity != "" && identity != username) {
		// A malformed response, or one asking to act as someone else.
		return s.failed(username, "PLAIN", "malformed response or other identity")
	}
	return s.loginPassword(username, password, "PLAIN")
}

// apop is APOP (RFC 1939 §7): the digest of the banner and a secret that
// only {PLAIN} users of users_file have.
func (s *session) apop(args []string) error {
	if s.banner == "" {
		s.reply("-ERR APOP is not available")
		return nil
	}
	name, digest := args[0], strings.ToLower(args[1])
	u, local, domain, err := s.resolve(name)
	if err != nil && !errors.Is(err, auth.ErrNoUser) {
		return s.tempFailure(name, "APOP", err)
	}
	secret, ok := "", false
	if u != nil && u.Virtual {
		secret, ok = auth.PlainSecret(u.Hash)
	}
	sum := md5.Sum([]byte(s.banner + secret))
	want := hex.EncodeToString(sum[:])
	if subtle.ConstantTimeCompare([]byte(want), []byte(digest)) != 1 || !ok {
		reason := "wrong digest"
		if u == nil {
			reason = "no such user"
		} else if !ok {
			reason = "no clear secret for APOP"
		}
		return s.failed(name, "APOP", reason)
	}
	return s.start(u, name, local, domain, "APOP")
}

// loginPassword checks name's password and opens the maildrop.
func (s *session) loginPassword(name, password, mech string) error {
	u, local, domain, err := s.resolve(name)
	if err != nil && !errors.Is(err, auth.ErrNoUser) {
		return s.tempFailure(name, mech, err)
	}
	if err := s.opts.Users.Authenticate(u, password); err != nil {
		if !errors.Is(err, auth.ErrBadPassword) {
			return s.tempFailure(name, mech, err)
		}
		return s.failed(name, mech, strings.TrimPrefix(err.Error(), auth.ErrBadPassword.Error()+": "))
	}
	return s.start(u, name, local, domain, mech)
}

// resolve finds the user a login name means (auth.ResolveLogin).
func (s *session) resolve(name string) (u *auth.User, local, domain string, err error) {
	return auth.ResolveLogin(s.opts.Users, name, s.opts.Hostname)
}

// failed answers a failed login after a delay that grows with each failure,
// and ends the session after MaxFailures.
func (s *session) failed(name, mech, reason string) error {
	s.failures++
	maillog.Auth("pop3", name, mech, "fail", reason, s.client, s.failures)
	if s.opts.FailureDelay > 0 {
		s.w.Flush()
		time.Sleep(min(time.Duration(s.failures), 5) * s.opts.FailureDelay)
	}
	s.reply(replyAuthFailed)
	if s.failures >= s.opts.MaxFailures {
		s.done = true
		s.ending = "too many failures"
	}
	return nil
}

// tempFailure answers a login that the server could not check or serve.
func (s *session) tempFailure(name, mech string, err error) error {
	maillog.Auth("pop3", name, mech, "tempfail", err.Error(), s.client, s.failures)
	s.reply(replyTemp)
	return nil
}

// start enters the TRANSACTION state for user u: the process becomes the
// user, then locks and reads the Maildir. From the switch on there is no
// way back, so a failure ends the session.
func (s *session) start(u *auth.User, name, local, domain, mech string) error {
	dir, err := mailbox.ExpandMailDir(s.opts.MailDir, local, domain, u.Home)
	if err != nil {
		return s.tempFailure(name, mech, err)
	}
	if err := s.opts.SwitchUser(u); err != nil {
		s.done = true
		return s.tempFailure(name, mech, err)
	}
	md, err := openMaildrop(dir)
	if err != nil {
		s.done = true
		if errors.Is(err, ErrInUse) {
			maillog.Auth("pop3", name, mech, "in-use", err.Error(), s.client, s.failures)
			s.reply(replyInUse)
			return nil
		}
		return s.tempFailure(name, mech, err)
	}
	maillog.Auth("pop3", name, mech, "ok", "", s.client, s.failures)
	s.md, s.login, s.state = md, name, transaction
	n, size := s.count()
	s.reply(fmt.Sprintf("+OK %s has %d messages (%d octets)", name, n, size))
	return nil
}
