package smtpserver

import (
	"fmt"

	"github.com/emersion/go-smtp"
)

// The replies this package gives, each with its enhanced status code
// (RFC 3463), in Postfix's words where Postfix has some. They belong in
// internal/status's one table once it has SMTP replies.
var (
	replyNestedMail = reply(503, 5, 5, 1, "Error: nested MAIL command")
	replyNeedMail   = reply(503, 5, 5, 1, "Error: need MAIL command")
	replyNeedRcpt   = reply(503, 5, 5, 1, "Error: need RCPT command")
	replySendHelo   = reply(503, 5, 5, 1, "Error: send HELO/EHLO first")
	replyInTransfer = reply(503, 5, 5, 1, "Error: message transfer in progress")

	replyBadSender    = reply(501, 5, 1, 7, "Bad sender address syntax")
	replyBadRecipient = reply(501, 5, 1, 3, "Bad recipient address syntax")
	// RFC 6531: a non-ASCII address needs SMTPUTF8 on MAIL; X.6.7 is
	// "Non-ASCII addresses not permitted for that sender/recipient".
	replyNeedUTF8     = reply(553, 5, 6, 7, "Error: non-ASCII address needs SMTPUTF8")
	replyRelay        = reply(554, 5, 7, 1, "Error: relay access denied")
	replyTooManyRcpts = reply(452, 4, 5, 3, "Error: too many recipients") // RFC 5321 §4.5.3.1.10

	replyUnknownCommand = reply(500, 5, 5, 2, "Error: command not recognized")
	replyUnknownParam   = reply(555, 5, 5, 4, "Error: unsupported parameter")

	replyTooBig      = reply(552, 5, 3, 4, "Error: message size exceeds fixed limit")
	replyLineTooLong = reply(500, 5, 5, 2, "Error: line too long") // RFC 5321 §4.5.3.1
	replyLostData    = reply(451, 4, 4, 2, "Error: message transfer failed")
	replyQueueFailed = reply(451, 4, 3, 0, "Error: queue file write error")

	// Policy (policy.go).
	replyUnknownUser  = reply(550, 5, 1, 1, "Error: user unknown in local recipient table")
	replyLookupFailed = reply(451, 4, 3, 0, "Error: temporary recipient lookup failure")

	// The session's end (wire.go): RFC 5321 §3.8 and §4.2.2 421.
	replyTimeout       = reply(421, 4, 4, 2, "Error: timeout exceeded")
	replyShutdown      = reply(421, 4, 3, 2, "Service shutting down, closing transmission channel")
	replyTooManyErrors = reply(421, 4, 7, 0, "Error: too many errors")
	replyTooManyConns  = reply(421, 4, 7, 0, "Error: too many connections from your address")

	// AUTH (RFC 4954 §6).
	replyAuthFailed   = reply(535, 5, 7, 8, "Error: authentication failed")
	replyAuthTemp     = reply(454, 4, 7, 0, "Error: temporary authentication failure")
	replyAuthNeedTLS  = reply(538, 5, 7, 11, "Error: encryption required for requested authentication mechanism")
	replyAuthDisabled = reply(503, 5, 5, 1, "Error: authentication not enabled")
	replyAuthMech     = reply(504, 5, 5, 4, "Error: unsupported authentication mechanism")
)

// replyQueued is the answer to DATA once the message is safely queued.
// go-smtp writes an *smtp.SMTPError returned from Data as it is, 250 too.
func replyQueued(id string) *smtp.SMTPError {
	return reply(250, 2, 0, 0, "Ok: queued as "+id)
}

func reply(code, class, subject, detail int, text string) *smtp.SMTPError {
	return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{class, subject, detail}, Message: text}
}

// line is the reply as it goes on the wire, without CRLF.
func line(r *smtp.SMTPError) string {
	e := r.EnhancedCode
	return fmt.Sprintf("%d %d.%d.%d %s", r.Code, e[0], e[1], e[2], r.Message)
}

// fixedReplies maps replies that go-smtp v0.25.1 writes by itself, before
// any Session method is called, to ours: it answers a command out of
// sequence with 502 ("not implemented"), where RFC 5321 §4.3.2 has 503
// ("bad sequence of commands"). wireConn swaps them on the wire.
var fixedReplies = map[string]string{
	"502 5.5.1 Missing MAIL FROM command.":               line(replyNeedMail),
	"502 5.5.1 Missing RCPT TO command.":                 line(replyNeedRcpt),
	"502 5.5.1 Please introduce yourself first.":         line(replySendHelo),
	"502 5.5.1 MAIL not allowed during message transfer": line(replyInTransfer),
	"502 5.5.1 RCPT not allowed during message transfer": line(replyInTransfer),
	"502 5.5.1 DATA not allowed during message transfer": line(replyInTransfer),
	// A line that is no command at all (not four letters and a space).
	"501 5.5.2 Bad command": line(replyUnknownCommand),
	// RFC 5321 §4.1.1.11: a parameter not recognized is 555.
	"500 5.5.4 Unknown MAIL FROM argument": line(replyUnknownParam),
	"500 5.5.4 Unknown RCPT TO argument":   line(replyUnknownParam),
	// go-smtp's own limit: a fifth unknown or mangled command closes.
	"500 5.5.1 Too many errors. Quiting now": line(replyTooManyErrors),
}
