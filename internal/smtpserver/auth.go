package smtpserver

import (
	"errors"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"yubin/internal/auth"
	"yubin/internal/maillog"
)

// AUTH (RFC 4954) with PLAIN (RFC 4616) and LOGIN, on the submission port
// only, and there only inside TLS or from a loopback client, so that no
// password crosses a network in clear. Passwords are checked against
// Options.Users; a failure gets 535 5.7.8 and counts as a session error.

var _ smtp.AuthSession = (*session)(nil)

// authOffered reports whether this session may authenticate now.
func (s *session) authOffered(o *Options) error {
	if !o.Submission || o.Users == nil {
		return replyAuthDisabled
	}
	if _, isTLS := s.conn.TLSConnectionState(); !isTLS && !isLoopback(s.client.addr) {
		return replyAuthNeedTLS
	}
	return nil
}

// AuthMechanisms is what EHLO advertises: nothing where AUTH is not
// offered.
func (s *session) AuthMechanisms() []string {
	if s.authOffered(s.b.options()) != nil {
		return nil
	}
	return []string{sasl.Plain, sasl.Login}
}

// Auth starts the exchange of one mechanism.
func (s *session) Auth(mech string) (sasl.Server, error) {
	o := s.b.options()
	if err := s.authOffered(o); err != nil {
		return nil, s.fail(err)
	}
	check := func(identity, user, password string) error {
		if identity != "" && identity != user {
			return s.authResult(o, mech, user, errIdentity)
		}
		return s.authResult(o, mech, user, s.checkPassword(o, user, password))
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(check), nil
	case sasl.Login:
		return &loginServer{check: check}, nil
	}
	return nil, s.fail(replyAuthMech)
}

// checkPassword authenticates user; unknown users cost a hash all the same.
func (s *session) checkPassword(o *Options, user, password string) error {
	u, err := o.Users.Lookup(user)
	if err != nil && !errors.Is(err, auth.ErrNoUser) {
		return err
	}
	return o.Users.Authenticate(u, password)
}

// authResult logs the attempt and turns its outcome into the reply.
func (s *session) authResult(o *Options, mech, user string, err error) error {
	if err == nil {
		s.authUser, s.authMech = user, mech
		maillog.Auth("smtp", user, mech, "ok", "", s.client.addr, s.authFailures)
		return nil
	}
	s.authFailures++
	if errors.Is(err, auth.ErrBadPassword) || errors.Is(err, auth.ErrNoUser) || errors.Is(err, errIdentity) {
		maillog.Auth("smtp", user, mech, "fail", "bad password or user", s.client.addr, s.authFailures)
		return s.fail(replyAuthFailed)
	}
	maillog.Auth("smtp", user, mech, "tempfail", err.Error(), s.client.addr, s.authFailures)
	return s.fail(replyAuthTemp)
}

// errIdentity: PLAIN named an authorization identity other than the user;
// acting for another user is not offered.
var errIdentity = errors.New("authorization identity differs")

// loginServer is the LOGIN mechanism (draft-murchison-sasl-login), which
// go-sasl has only as a client: "Username:", then "Password:".
type loginServer struct {
	check func(identity, user, password string) error
	user  string
	step  int
}

func (l *loginServer) Next(response []byte) (challenge []byte, done bool, err error) {
	switch l.step {
	case 0:
		l.step++
		if len(response) > 0 { // an initial response is the user name
			l.user = string(response)
			l.step++
			return []byte("Password:"), false, nil
		}
		return []byte("Username:"), false, nil
	case 1:
		l.user = string(response)
		l.step++
		return []byte("Password:"), false, nil
	case 2:
		l.step++
		return nil, true, l.check("", l.user, string(response))
	}
	return nil, false, errors.New("unexpected response")
}
