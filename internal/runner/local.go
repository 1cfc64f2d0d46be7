package runner

import (
	"bytes"
	"errors"
	"strconv"
	"strings"

	"yubin/internal/mailbox"
	"yubin/internal/status"
)

// local makes the mailbox copies in this process with internal/mailbox,
// which writes each one on an OS thread carrying the user's file-system
// identity (internal/identity): no program is started per message, and the
// rest of the runner keeps its rights. The message is read once per
// envelope sender; a user reached twice gets one copy.
func (a *attempt) local(copies []*copy) {
	bySender := map[string][]*copy{}
	var senders []string
	for _, c := range copies {
		if bySender[c.d.Sender] == nil {
			senders = append(senders, c.d.Sender)
		}
		bySender[c.d.Sender] = append(bySender[c.d.Sender], c)
	}
	for _, sender := range senders {
		users := map[string][]*copy{}
		var names []string
		for _, c := range bySender[sender] {
			if users[c.d.Value] == nil {
				names = append(names, c.d.Value)
			}
			users[c.d.Value] = append(users[c.d.Value], c)
		}
		results := a.deliver(sender, names)
		for _, name := range names {
			for _, c := range users[name] {
				a.done(c, results[name])
			}
		}
	}
}

// deliver writes the message into each user's mailbox and returns each
// one's outcome.
func (a *attempt) deliver(sender string, users []string) map[string]outcome {
	results := map[string]outcome{}
	m, err := mailbox.ReadMessage(bytes.NewReader(a.body), 0)
	if err == nil {
		m.ID, m.Sender = a.env.ID, sender
		defer m.Close()
	}
	for _, u := range users {
		if err == nil {
			_, derr := a.e.mailbox.Deliver(m, u)
			results[u] = mailboxOutcome(u, a.r.o.Hostname, derr)
		} else {
			results[u] = mailboxOutcome(u, a.r.o.Hostname, err)
		}
	}
	return results
}

// mailboxOutcome is what a mailbox delivery's error means: its sysexits
// status as deliver would exit with it (status.FromExit gives the RFC 3463
// code, temporary or permanent), but a mail loop is 5.4.6 as Postfix's
// local(8) says.
func mailboxOutcome(user, hostname string, err error) outcome {
	var o outcome
	switch code := mailbox.Status(err); {
	case err == nil:
		o = newOutcome("2.0.0", "delivered to mailbox")
	case errors.Is(err, mailbox.ErrLoop):
		o = newOutcome("5.4.6", err.Error())
	default:
		e, ok := status.FromExit(code)
		if !ok {
			e.DSN = "4.3.0"
		}
		o = newOutcome(e.DSN, err.Error())
	}
	if err != nil {
		o.diag, o.diagType = strconv.Itoa(mailbox.Status(err))+" "+err.Error(), "x-unix"
	}
	o.relay, o.finalRcpt = "local", qualify(user, hostname)
	return o
}

func qualify(user, domain string) string {
	if strings.Contains(user, "@") {
		return user
	}
	return user + "@" + domain
}
