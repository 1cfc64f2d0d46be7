package pop3

import (
	"errors"
	"strconv"
	"strings"
)

// state is a POP3 session state (RFC 1939 §3); a command names the states
// it is valid in.
type state uint8

const (
	authorization state = 1 << iota
	transaction
)

// command is one row of the command table.
type command struct {
	name    string
	states  state
	minArgs int
	maxArgs int
	rest    bool // the whole rest of the line is one argument (PASS)
	run     func(s *session, args []string) error
}

// commands is the table every line is parsed against. RFC 1939 §3: a
// keyword, case-insensitive, then arguments separated by spaces.
var commands []*command

func init() {
	// Set here rather than in a literal: the handlers refer back to the
	// table (CAPA), which Go's initialisation order would refuse.
	commands = []*command{
		{name: "USER", states: authorization, minArgs: 1, maxArgs: 1, run: (*session).user},
		// RFC 1939 §7: a server may take spaces as part of the password.
		{name: "PASS", states: authorization, minArgs: 1, maxArgs: 1, rest: true, run: (*session).pass},
		{name: "APOP", states: authorization, minArgs: 2, maxArgs: 2, run: (*session).apop},
		{name: "AUTH", states: authorization, minArgs: 0, maxArgs: 2, run: (*session).auth},
		{name: "STLS", states: authorization, run: (*session).stls},
		{name: "CAPA", states: authorization | transaction, run: (*session).capa},
		{name: "QUIT", states: authorization | transaction, run: (*session).quit},
		{name: "STAT", states: transaction, run: (*session).stat},
		{name: "LIST", states: transaction, maxArgs: 1, run: (*session).list},
		{name: "RETR", states: transaction, minArgs: 1, maxArgs: 1, run: (*session).retr},
		{name: "DELE", states: transaction, minArgs: 1, maxArgs: 1, run: (*session).dele},
		{name: "NOOP", states: transaction, run: (*session).noop},
		{name: "RSET", states: transaction, run: (*session).rset},
		{name: "TOP", states: transaction, minArgs: 2, maxArgs: 2, run: (*session).top},
		{name: "UIDL", states: transaction, maxArgs: 1, run: (*session).uidl},
	}
}

// maxArgLen: RFC 2449 §4 lets arguments grow to 255 octets (a command
// line is at most 255 octets with its CRLF, checked by the reader).
const maxArgLen = 255

// Parse errors, sent after "-ERR ".
var (
	errEmpty     = errors.New("empty command")
	errUnknown   = errors.New("unknown command")
	errBadChar   = errors.New("control character in command")
	errArgCount  = errors.New("wrong number of arguments")
	errArgLength = errors.New("argument too long")
)

// parseCommand splits a line (its CRLF removed) into a table row and
// arguments. Extra spaces between arguments are tolerated; a PASS argument
// is everything after the first space.
func parseCommand(line string) (*command, []string, error) {
	for i := 0; i < len(line); i++ {
		if c := line[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return nil, nil, errBadChar
		}
	}
	keyword, rest, _ := strings.Cut(line, " ")
	if keyword == "" {
		return nil, nil, errEmpty
	}
	var cmd *command
	for _, c := range commands {
		if strings.EqualFold(c.name, keyword) {
			cmd = c
			break
		}
	}
	if cmd == nil {
		return nil, nil, errUnknown
	}
	var args []string
	if cmd.rest {
		if rest != "" {
			args = []string{rest}
		}
	} else {
		args = strings.Fields(rest)
	}
	if len(args) < cmd.minArgs || len(args) > cmd.maxArgs {
		return cmd, nil, errArgCount
	}
	for _, a := range args {
		if len(a) > maxArgLen {
			return cmd, nil, errArgLength
		}
	}
	return cmd, args, nil
}

// parseNumber reads a message number or line count: decimal digits only
// (no sign, no spaces), at most 9 of them.
func parseNumber(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
