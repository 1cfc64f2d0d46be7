// Package status is the one table of outcome numbers: the sysexits.h codes
// that command-line programs exit with, because MTAs and scripts branch on
// them (see sysexits(3) and Postfix's sys_exits.c).
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
