// Package submit is the logic behind yubin's drop-in /usr/sbin/sendmail:
// the historic command line, and the message read from standard input.
// It does no I/O of its own beyond the reader it is given; cmd/sendmail
// wires it to the queue.
//
// # Command line
//
// ParseArgs accepts the union of what sendmail 8 (sendmail/main.c, OPTIONS
// and obsolete()), Postfix (src/sendmail/sendmail.c, GETOPT_LIST) and
// OpenSMTPD (smtpd/enqueue.c) accept, with getopt(3) rules: options may be
// clustered (-ti), an option's argument is the rest of the word or the next
// word (-fuser, -f user), "--" ends the options, and the first word that is
// not an option ends them too (Postfix's "+" getopt: no permutation). The
// remaining words are recipients, each parsed as an RFC 5322 address list as
// Postfix does, so "a@b, c@d" and "Joe <joe@b>" work.
//
// As in sendmail 8's obsolete(), a word that is exactly -q (or -Q, -C) takes
// the next word as its argument only when that word does not begin with '-':
// "-q" alone runs the queue once, "-q 30m" is the same as "-q30m".
//
// Honoured: -bm -bp -bi -I -bs -bv -bd -bD -bh -bH, -q[interval], -qI -qR -qS
// (and their -q! negations), -qf -qp, -f/-r, -F, -t, -i, -oi, -oe, -e, -od,
// -O DeliveryMode/ErrorMode/IgnoreDots, -N, -B, -R, -V, -C, -v.
// Accepted and ignored, as Postfix and OpenSMTPD ignore what they cannot
// honour, and listed in Options.Ignored: -A -c -D -d -E -G -h -J -L -M -m -n
// -p -Q -qG -S -s -T -U -X -x, -XV (Postfix VERP), and the -o and -O options
// not named above. (-D -M -Q -s -T are sendmail 8's, -E -J -S OpenSMTPD's.
// Sendmail 8 honours -n, no aliasing, which Postfix refuses.)
// Refused with a *UsageError: unknown letters, a missing argument, -b modes
// other than the above (sendmail 8 also has -ba -bC -bP -bt -bz; Postfix
// refuses them), -qL and -qQ (no lost or quarantined items here), malformed
// values of honoured options, and, as Postfix refuses them, -t outside
// delivery mode and recipients in a mode that takes none.
//
// # Message
//
// ReadMessage reads the message as Postfix's sendmail does: see its doc
// comment for line endings, the dot rule, the mbox From_ line and where the
// header ends. Message keeps each header field's bytes as read, so a message
// passes through unchanged except for what the caller adds or removes.
package submit

import (
	"fmt"
	"math"
	"strings"
	"time"

	"yubin/internal/address"
)

// Mode is what sendmail was asked to do (-b, -I, -q).
type Mode int

const (
	ModeDeliver     Mode = iota // -bm, the default: read a message on stdin and queue it
	ModePrintQueue              // -bp: list the queue (mailq)
	ModeInitAliases             // -bi, -I: rebuild the aliases database (newaliases)
	ModeSMTP                    // -bs: SMTP on stdin and stdout
	ModeVerify                  // -bv: verify the recipients, queue nothing
	ModeQueueRun                // -q: run the queue once, or every QueueInterval
	ModeDaemon                  // -bd, -bD: the SMTP daemon (smtpd)
	ModeHostStatus              // -bh, -bH: no host status database here: do nothing, exit 0 (Postfix)
)

// Options is a parsed sendmail command line.
type Options struct {
	Mode              Mode
	Foreground        bool   // -bD: daemon in the foreground
	Sender            string // from -f/-r, without angle brackets; "" with SenderSet = null sender
	SenderSet         bool
	FullName          string        // -F, as given
	ExtractRecipients bool          // -t
	IgnoreDots        bool          // -i, -oi, -O IgnoreDots
	DeliveryMode      byte          // 'i','b','q','d' from -od or -O DeliveryMode; 0 when not given
	ErrorMode         byte          // 'p','q','m','w','e' from -oe, -e or -O ErrorMode; 0 when not given
	Verbose           bool          // -v
	Config            string        // -C; "" for the default
	QueueInterval     time.Duration // -q30m (sendmail units: s m h d w); 0 for a single run
	QueueSelect       []QueueSelect // -qI/-qR/-qS
	Notify            string        // -N: "NEVER", or a subset of "SUCCESS,DELAY,FAILURE" in that order
	Body              string        // -B: "7BIT" or "8BITMIME"
	Ret               string        // -R: "FULL" or "HDRS"
	EnvID             string        // -V: printable ASCII, at most 100 characters (RFC 3461 §4.4), not xtext-encoded
	Recipients        []string      // addresses from the words after the options
	Ignored           []string      // accepted-but-ignored flags, option letter and argument in one word ("-h5", "-oQ/dir")
}

// QueueSelect limits a queue run to the messages whose queue ID (Field
// 'I'), a recipient ('R') or the sender ('S') contains Value; with Negate,
// to those where it does not (sendmail 8 -q!I...).
type QueueSelect struct {
	Field  byte
	Value  string
	Negate bool
}

// UsageError is a command line sendmail cannot act on; it maps to EX_USAGE.
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// optstring is, in getopt(3) syntax, the union of sendmail 8's OPTIONS
// "A:B:b:C:cD:d:e:F:f:Gh:IiL:M:mN:nO:o:p:Q:q:R:r:sTtV:vX:", Postfix's
// GETOPT_LIST "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:q:tvx" and
// OpenSMTPD's "A:B:b:E::e:F:f:iJ::L:mN:o:p:qr:R:StvV:x" (whose -q takes no
// argument: sendmail's and Postfix's "q:" wins). "::" marks an argument that
// exists only when attached to the letter.
const optstring = "A:B:b:C:cD:d:E::e:F:f:Gh:IiJ::L:M:mN:nO:o:p:Q:q:R:r:SsTtUV:vX:x"

type argKind int

const (
	unknownOption argKind = iota
	noArg
	needsArg
	attachedArg
)

func kindOf(c byte) argKind {
	if c == ':' {
		return unknownOption
	}
	i := strings.IndexByte(optstring, c)
	switch {
	case i < 0:
		return unknownOption
	case strings.HasPrefix(optstring[i+1:], "::"):
		return attachedArg
	case strings.HasPrefix(optstring[i+1:], ":"):
		return needsArg
	}
	return noArg
}

// obsoleteDefault is sendmail 8's obsolete(): the argument a word that is
// exactly -q, -Q, -C or -d gets when the next word is missing or is an
// option (-d: always), instead of swallowing that word.
func obsoleteDefault(c byte, next []string) (string, bool) {
	alone := len(next) == 0 || strings.HasPrefix(next[0], "-")
	switch {
	case c == 'd':
		return "0-99.1", true
	case c == 'q' && alone: // run the queue once
		return "0", true
	case c == 'Q' && alone:
		return ".", true
	case c == 'C' && alone: // the default configuration
		return "", true
	}
	return "", false
}

// ParseArgs parses sendmail's arguments, without argv[0]. It checks only the
// command line: a delivery with no recipients (and no -t) is refused by the
// caller after reading the message, as Postfix and sendmail 8 do.
func ParseArgs(args []string) (*Options, error) {
	p := &parser{o: &Options{}}
	i := 0
	for i < len(args) {
		w := args[i]
		if w == "--" {
			i++
			break
		}
		if len(w) < 2 || w[0] != '-' {
			break
		}
		i++
		// Postfix: "-XV" alone asks for VERP and takes no argument.
		if w == "-XV" {
			p.ignore(w)
			continue
		}
		used, err := p.word(w, args[i:])
		if err != nil {
			return nil, err
		}
		i += used
	}
	for _, w := range args[i:] {
		addrs, err := address.ParseList(w)
		if err == nil && len(addrs) == 0 {
			err = address.ErrEmpty
		}
		if err != nil {
			return nil, &AddressError{fmt.Errorf("recipient %q: %w", w, err)}
		}
		p.o.Recipients = append(p.o.Recipients, addrs...)
	}
	return p.o, p.finish()
}

type parser struct {
	o        *Options
	queueRun bool   // a -q was given
	bmode    string // the last -b or -I, for messages
}

// word parses one option word w; next are the words after it. It returns
// how many of them it used as an argument.
func (p *parser) word(w string, next []string) (int, error) {
	for j := 1; j < len(w); j++ {
		c := w[j]
		switch kindOf(c) {
		case unknownOption:
			return 0, usagef("invalid option -- %q", c)
		case noArg:
			p.flag(c)
			continue
		case attachedArg:
			return 0, p.option(c, w[j+1:])
		}
		if j+1 < len(w) {
			return 0, p.option(c, w[j+1:])
		}
		if len(w) == 2 {
			if arg, ok := obsoleteDefault(c, next); ok {
				return 0, p.option(c, arg)
			}
		}
		if len(next) == 0 {
			return 0, usagef("option requires an argument -- %q", c)
		}
		return 1, p.option(c, next[0])
	}
	return 0, nil
}

func (p *parser) ignore(flag string) { p.o.Ignored = append(p.o.Ignored, flag) }

// flag handles an option without an argument.
func (p *parser) flag(c byte) {
	switch c {
	case 'I':
		p.o.Mode = ModeInitAliases
		p.bmode = "-I"
	case 'i':
		p.o.IgnoreDots = true
	case 't':
		p.o.ExtractRecipients = true
	case 'v':
		p.o.Verbose = true
	default: // c G m n S s T U x
		p.ignore("-" + string(c))
	}
}

// option handles an option with its argument.
func (p *parser) option(c byte, arg string) error {
	o := p.o
	switch c {
	case 'b':
		return p.mode(arg)
	case 'q':
		p.queueRun = true
		return p.queue(arg)
	case 'f', 'r':
		return p.sender(c, arg)
	case 'F':
		o.FullName = arg
	case 'C':
		if arg == "" {
			p.ignore("-C")
		}
		o.Config = arg
	case 'o':
		return p.shortOption(arg)
	case 'O':
		return p.longOption(arg)
	case 'e': // sendmail 8: setoption('e', optarg), the same as -oe
		p.errorMode("-e"+arg, arg)
	case 'N':
		n, err := parseNotify(arg)
		if err != nil {
			return err
		}
		o.Notify = n
	case 'B':
		b := strings.ToUpper(arg)
		if b != "7BIT" && b != "8BITMIME" { // RFC 6152 BODY=
			return usagef("-B %q: use 7BIT or 8BITMIME", arg)
		}
		o.Body = b
	case 'R':
		r := strings.ToUpper(arg)
		if r != "FULL" && r != "HDRS" { // RFC 3461 §4.3 RET=
			return usagef("-R %q: use full or hdrs", arg)
		}
		o.Ret = r
	case 'V':
		if err := checkEnvID(arg); err != nil {
			return err
		}
		o.EnvID = arg
	default: // A D d E h J L M p Q X
		p.ignore("-" + string(c) + arg)
	}
	return nil
}

// mode handles -b; like sendmail 8 and Postfix, only the first letter counts.
func (p *parser) mode(arg string) error {
	p.bmode = "-b" + arg
	m := byte(0)
	if arg != "" {
		m = arg[0]
	}
	switch m {
	case 'm':
		p.o.Mode = ModeDeliver
	case 'p':
		p.o.Mode = ModePrintQueue
	case 'i':
		p.o.Mode = ModeInitAliases
	case 's':
		p.o.Mode = ModeSMTP
	case 'v':
		p.o.Mode = ModeVerify
	case 'd', 'D':
		p.o.Mode = ModeDaemon
		p.o.Foreground = m == 'D'
	case 'h', 'H':
		p.o.Mode = ModeHostStatus
	default: // sendmail 8 also has -ba -bC -bP -bt -bz; Postfix refuses them
		return usagef("unsupported mode -b%s", arg)
	}
	return nil
}

// queue handles -q's argument, "0" for a -q alone (sendmail 8 obsolete()).
func (p *parser) queue(arg string) error {
	sel := arg
	negate := strings.HasPrefix(sel, "!")
	if negate {
		sel = sel[1:]
	}
	if sel == "" {
		return usagef("-q%s: missing selector", arg)
	}
	switch f := sel[0]; {
	case f == 'I' || f == 'R' || f == 'S':
		if len(sel) == 1 {
			return usagef("-q%s: missing value", arg)
		}
		p.o.QueueSelect = append(p.o.QueueSelect, QueueSelect{Field: f, Value: sel[1:], Negate: negate})
		return nil
	case negate:
		return usagef("-q%s: only I, R and S can be negated", arg)
	case f == 'L' || f == 'Q':
		return usagef("-q%c: there are no lost or quarantined items", f)
	case f == 'G': // a queue group: there is only one queue
		p.ignore("-q" + arg)
	case f == 'f': // run in the foreground, which is what we do
	case f == 'p': // persistent runner: every interval, 1s by default (sendmail 8)
		p.o.QueueInterval = time.Second
		if len(sel) > 1 {
			d, err := parseInterval(sel[1:])
			if err != nil {
				return usagef("-q%s: %v", arg, err)
			}
			p.o.QueueInterval = d
		}
	default:
		d, err := parseInterval(sel)
		if err != nil {
			return usagef("-q%s: %v", arg, err)
		}
		p.o.QueueInterval = d
	}
	return nil
}

// parseInterval is sendmail 8's convtime(s, 'm'): numbers each followed by
// a unit (w d h m s), minutes when the unit is left off; "1h30" is 90m.
func parseInterval(s string) (time.Duration, error) {
	units := map[byte]time.Duration{'s': time.Second, 'm': time.Minute, 'h': time.Hour,
		'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("bad interval %q", s)
		}
		var n int64
		for _, d := range s[:i] {
			if n > (math.MaxInt64-9)/10 {
				return 0, fmt.Errorf("interval %q too long", s)
			}
			n = n*10 + int64(d-'0')
		}
		unit := time.Minute
		if i < len(s) {
			u, ok := units[s[i]]
			if !ok {
				return 0, fmt.Errorf("invalid time unit %q", s[i])
			}
			unit = u
			i++
		}
		if n > int64((math.MaxInt64-total)/unit) {
			return 0, fmt.Errorf("interval too long")
		}
		total += time.Duration(n) * unit
		s = s[i:]
	}
	return total, nil
}

// sender handles -f and -r. "" and "<>" are the null sender; otherwise the
// argument is parsed as an address and may carry a display name.
func (p *parser) sender(c byte, arg string) error {
	p.o.SenderSet = true
	if a := strings.TrimSpace(arg); a == "" || a == "<>" {
		p.o.Sender = ""
		return nil
	}
	addrs, err := address.ParseList(arg)
	if err != nil {
		return usagef("-%c %q: %v", c, arg, err)
	}
	if len(addrs) != 1 {
		return usagef("-%c %q: not one address", c, arg)
	}
	p.o.Sender = addrs[0]
	return nil
}

// shortOption handles -o: its first letter names the option, the rest of
// the word is the value (sendmail 8 setoption()).
func (p *parser) shortOption(arg string) error {
	if arg == "" {
		p.ignore("-o")
		return nil
	}
	val := arg[1:]
	switch arg[0] {
	case 'i':
		p.o.IgnoreDots = atobool(val)
	case 'e':
		p.errorMode("-o"+arg, val)
	case 'd':
		return p.deliveryMode("-o"+arg, val)
	default: // A Q 7 8 m and the rest of sendmail.cf
		p.ignore("-o" + arg)
	}
	return nil
}

// longOption handles -O Name=Value; names are sendmail 8's long option
// names, compared without regard to case.
func (p *parser) longOption(arg string) error {
	name, val, _ := strings.Cut(arg, "=")
	val = strings.TrimSpace(val)
	switch strings.ToLower(strings.TrimSpace(name)) {
	case "ignoredots":
		p.o.IgnoreDots = atobool(val)
	case "errormode":
		p.errorMode("-O"+arg, val)
	case "deliverymode":
		return p.deliveryMode("-O"+arg, val)
	default:
		p.ignore("-O" + arg)
	}
	return nil
}

// atobool is sendmail 8's: empty, or starting with t or y, is true.
func atobool(s string) bool {
	return s == "" || strings.ContainsRune("tTyY", rune(s[0]))
}

// deliveryMode: i interactive, b background, q queue only, d defer; empty
// is i. An unknown mode is EX_USAGE in sendmail 8.
func (p *parser) deliveryMode(flag, val string) error {
	if val == "" {
		p.o.DeliveryMode = 'i'
		return nil
	}
	if !strings.ContainsRune("ibqd", rune(val[0])) {
		return usagef("%s: unknown delivery mode %q", flag, val[0])
	}
	p.o.DeliveryMode = val[0]
	return nil
}

// errorMode: p print, q quiet, m mail, w write, e mail and exit 0. Like
// sendmail 8, an unknown mode is ignored.
func (p *parser) errorMode(flag, val string) {
	if val == "" || !strings.ContainsRune("pqmwe", rune(val[0])) {
		p.ignore(flag)
		return
	}
	p.o.ErrorMode = val[0]
}

// parseNotify checks -N as sendmail 8 does: "never", or a comma-separated
// list of success, delay and failure, any case (RFC 3461 §4.1 NOTIFY=).
func parseNotify(arg string) (string, error) {
	var never bool
	seen := map[string]bool{}
	for _, w := range strings.Split(arg, ",") {
		switch w = strings.ToUpper(strings.TrimSpace(w)); w {
		case "NEVER":
			never = true
		case "SUCCESS", "DELAY", "FAILURE":
			seen[w] = true
		default:
			return "", usagef("-N %q: use never, or success, delay and failure", arg)
		}
	}
	if never {
		if len(seen) > 0 {
			return "", usagef("-N %q: never goes alone", arg)
		}
		return "NEVER", nil
	}
	var out []string
	for _, w := range []string{"SUCCESS", "DELAY", "FAILURE"} {
		if seen[w] {
			out = append(out, w)
		}
	}
	return strings.Join(out, ","), nil
}

// checkEnvID is Postfix's check of -V: printable and at most 100 characters
// (RFC 3461 §4.4).
func checkEnvID(s string) error {
	if s == "" || len(s) > 100 {
		return usagef("-V: envelope ID must be 1 to 100 characters")
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '!' || s[i] > '~' {
			return usagef("-V %q: envelope ID must be printable ASCII", s)
		}
	}
	return nil
}

// finish checks the combinations Postfix refuses.
func (p *parser) finish() error {
	o := p.o
	if p.queueRun {
		switch o.Mode {
		case ModeDeliver:
			o.Mode = ModeQueueRun
		case ModeDaemon, ModePrintQueue: // sendmail 8: -bd -q30m, -bp -qRuser
		default:
			return usagef("-q cannot be used with %s", p.bmode)
		}
	}
	if o.ExtractRecipients && o.Mode != ModeDeliver {
		return usagef("-t can be used only in delivery mode")
	}
	switch o.Mode {
	case ModePrintQueue, ModeInitAliases, ModeSMTP, ModeQueueRun, ModeDaemon:
		if len(o.Recipients) > 0 {
			return usagef("recipients given in a mode that takes none: %s", strings.Join(o.Recipients, " "))
		}
	}
	return nil
}
