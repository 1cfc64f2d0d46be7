// Package status is the one table of outcome numbers: the sysexits.h codes
// that command-line programs exit with, because MTAs and scripts branch on
// them (see sysexits(3)), and what each means for a delivery (Postfix's
// sys_exits.c).
package status

// sysexits.h
const (
	OK          = 0
	Usage       = 64 // EX_USAGE: bad command line
	DataErr     = 65 // EX_DATAERR: unusable input data
	NoInput     = 66 // EX_NOINPUT: input file missing or unreadable
	NoUser      = 67 // EX_NOUSER: addressee unknown
	NoHost      = 68 // EX_NOHOST: host name unknown
	Unavailable = 69 // EX_UNAVAILABLE: service unavailable
	Software    = 70 // EX_SOFTWARE: internal software error
	OSErr       = 71 // EX_OSERR: system error (e.g. cannot fork)
	OSFile      = 72 // EX_OSFILE: critical OS file missing
	CantCreat   = 73 // EX_CANTCREAT: cannot create output file
	IOErr       = 74 // EX_IOERR: input/output error
	TempFail    = 75 // EX_TEMPFAIL: temporary failure, try again later
	Protocol    = 76 // EX_PROTOCOL: remote error in protocol
	NoPerm      = 77 // EX_NOPERM: permission denied
	Config      = 78 // EX_CONFIG: configuration error
)

// Exit is what an MDA's or a command's exit status means for a delivery:
// an RFC 3463 enhanced status code and a short text, as Postfix's
// sys_exits.c has them. A 4.x.x code is temporary: the mail waits.
type Exit struct {
	DSN  string // "5.1.1"
	Text string // "user unknown"
}

// Temporary reports whether the delivery may succeed later.
func (e Exit) Temporary() bool { return e.DSN[0] == '4' }

var exits = map[int]Exit{
	Usage:       {"5.3.0", "command line usage error"},
	DataErr:     {"5.6.0", "data format error"},
	NoInput:     {"5.3.0", "cannot open input"},
	NoUser:      {"5.1.1", "user unknown"},
	NoHost:      {"5.1.2", "host name unknown"},
	Unavailable: {"5.3.0", "service unavailable"},
	Software:    {"5.3.0", "internal software error"},
	OSErr:       {"4.3.0", "system resource problem"},
	OSFile:      {"5.3.0", "critical OS file missing"},
	CantCreat:   {"5.2.0", "can't create user output file"},
	IOErr:       {"5.3.0", "input/output error"},
	TempFail:    {"4.3.0", "temporary failure"},
	Protocol:    {"5.5.0", "remote error in protocol"},
	NoPerm:      {"5.7.0", "permission denied"},
	Config:      {"5.3.5", "local configuration error"},
}

// FromExit returns the meaning of a sysexits.h exit status; ok is false for
// any other status.
func FromExit(code int) (e Exit, ok bool) {
	e, ok = exits[code]
	return e, ok
}
