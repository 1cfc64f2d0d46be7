package smtpserver

import (
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"

	"yubin/internal/queue"
)

// mailName is what the Received header calls this software, where Postfix
// writes its mail_name.
const mailName = "yubin"

// received returns the Received header (RFC 5321 §4.4) that Data puts on
// top of a message, laid out and folded (LF and a tab) as Postfix's smtpd
// writes it:
//
//	Received: from HELO (NAME [ADDR])
//		by HOSTNAME (yubin) with ESMTP id QUEUEID
//		for <rcpt@example.org>; Mon, 2 Jan 2006 15:04:05 -0700 (MST)
//
// NAME is the client's reverse DNS name, "unknown" without one; ADDR is its
// IP address, with "IPv6:" before an IPv6 one as in an address literal.
// A local submission (sendmail -bs) has Postfix's "localhost [127.0.0.1]"
// for the client and, as Postfix's pickup does for local mail, the user's
// uid (never the login name) beside our name:
//
//	Received: from HELO (localhost [127.0.0.1])
//		by HOSTNAME (yubin, from userid 1000) with ESMTP id QUEUEID
//		for <rcpt@example.org>; Mon, 2 Jan 2006 15:04:05 -0700 (MST)
//
// "for" names the recipient only when there is exactly one, so that other
// (Bcc) recipients are not shown; with several, the date has a line of its
// own after "id QUEUEID;". What the client chose (HELO, the recipient) is
// made safe for a header: a control character or a byte that is not UTF-8
// becomes '?', and a local part that is not a dot-atom is quoted.
func received(env *queue.Envelope, hostname string, local *LocalUser) string {
	var b strings.Builder
	name, addr := "localhost", "127.0.0.1"
	if local == nil {
		name, addr = env.ClientName, env.Client
		if name == "" {
			name = "unknown"
		}
		if ip, err := netip.ParseAddr(addr); err == nil && ip.Is6() {
			addr = "IPv6:" + addr
		}
	}
	helo := env.Helo
	if helo == "" {
		helo = name
	}
	b.WriteString("Received: from ")
	b.WriteString(headerSafe(helo))
	b.WriteString(" (")
	b.WriteString(headerSafe(name))
	b.WriteString(" [")
	b.WriteString(headerSafe(addr))
	b.WriteString("])\n\tby ")
	b.WriteString(hostname)
	b.WriteString(" (" + mailName)
	if local != nil {
		b.WriteString(", from userid ")
		b.WriteString(strconv.Itoa(local.UID))
	}
	b.WriteString(") with ")
	b.WriteString(env.Proto)
	b.WriteString(" id ")
	b.WriteString(env.ID)
	if len(env.Recipients) == 1 {
		b.WriteString("\n\tfor <")
		b.WriteString(headerSafe(quoteLocal(env.Recipients[0].Addr)))
		b.WriteString(">; ")
	} else {
		b.WriteString(";\n\t")
	}
	b.WriteString(env.Arrival.Format("Mon, 2 Jan 2006 15:04:05 -0700 (MST)"))
	b.WriteString("\n")
	return b.String()
}

// headerSafe replaces what must not be in a header field with '?': control
// characters (CR and LF among them) and bytes that are not UTF-8.
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == utf8.RuneError {
			return '?'
		}
		return r
	}, s)
}

// quoteLocal quotes the local part of addr when it is not a dot-atom (RFC
// 5322 §3.4.1), as go-smtp hands it over without the quotes the client
// sent: "john doe"@example.org arrives as john doe@example.org.
func quoteLocal(addr string) string {
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return addr
	}
	local, domain := addr[:at], addr[at:]
	if isDotAtom(local) {
		return addr
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(local); i++ {
		if local[i] == '"' || local[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(local[i])
	}
	b.WriteByte('"')
	b.WriteString(domain)
	return b.String()
}

// isDotAtom reports whether s is a dot-atom: atext (RFC 5322 §3.2.3, with
// RFC 6532's UTF-8) separated by single dots.
func isDotAtom(s string) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' || strings.Contains(s, "..") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c >= utf8.RuneSelf:
		case strings.IndexByte("!#$%&'*+-/=?^_`{|}~.", c) >= 0:
		default:
			return false
		}
	}
	return true
}
