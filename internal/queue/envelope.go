package queue

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"
)

// formatVersion is the "v" field of every envelope line; a reader refuses
// versions it does not know rather than guess.
const formatVersion = 1

// maxEnvelopeLine bounds the envelope line a reader accepts (about 50,000
// recipients), so a damaged file cannot make mailq read a whole body.
const maxEnvelopeLine = 8 << 20

// Envelope is what the message file says about a message, with the state of
// each recipient as the state log records it.
type Envelope struct {
	V          int          `json:"v"`
	ID         string       `json:"id"`
	From       string       `json:"from"` // "" is the null sender <>
	Recipients []*Recipient `json:"rcpts"`
	Arrival    time.Time    `json:"arrival"`
	Client     string       `json:"client,omitempty"`      // SMTP client IP; "" for local submission
	ClientName string       `json:"client_name,omitempty"` // its reverse DNS name
	Helo       string       `json:"helo,omitempty"`
	Proto      string       `json:"proto,omitempty"` // SMTP, ESMTP, ESMTPS, ESMTPSA, local
	User       string       `json:"user,omitempty"`  // local submitter or SMTP AUTH identity
	EnvID      string       `json:"envid,omitempty"` // DSN ENVID (RFC 3461)
	Ret        string       `json:"ret,omitempty"`   // DSN RET: FULL or HDRS
	Body       string       `json:"body,omitempty"`  // 7BIT, 8BITMIME
	SMTPUTF8   bool         `json:"smtputf8,omitempty"`

	// Size is the message's size in bytes (the file minus the envelope line).
	Size int64 `json:"-"`
	// Active: a process held the delivery lock when the envelope was read.
	Active bool `json:"-"`
	// Held: the message is on hold (set by listings that ask, see Queue.HeldIDs).
	Held bool `json:"-"`
}

// Recipient is one envelope recipient and how far its delivery has come.
type Recipient struct {
	Addr   string `json:"addr"`
	ORCPT  string `json:"orcpt,omitempty"`  // DSN ORCPT, "rfc822;addr" as given
	Notify string `json:"notify,omitempty"` // DSN NOTIFY: NEVER, or SUCCESS,DELAY,FAILURE; "" = default

	State       State     `json:"-"`
	Attempts    int       `json:"-"`
	LastAttempt time.Time `json:"-"`
	LastReply   string    `json:"-"` // the remote or local reply to the last attempt
	NextAttempt time.Time `json:"-"` // for Deferred
	Warned      time.Time `json:"-"` // when a delay warning about it was queued; zero: none
}

// State is where a recipient's delivery stands.
type State int

const (
	Pending   State = iota // not yet attempted
	Deferred               // attempted, failed temporarily, will be retried
	Delivered              // done; never attempted again
	Failed                 // failed permanently; bounced
)

var stateNames = [...]string{"pending", "deferred", "delivered", "failed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// MarshalText writes the state's name in the state log.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a state name.
func (s *State) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if string(b) == n {
			*s = State(i)
			return nil
		}
	}
	return fmt.Errorf("unknown recipient state %q", b)
}

// Done reports whether a recipient needs no more attempts.
func (s State) Done() bool { return s == Delivered || s == Failed }

// record is one line of a state log: one attempt of recipient Rcpt, or,
// when Warned is there, the delay warning about the recipients it lists.
type record struct {
	Rcpt   int       `json:"rcpt"`
	State  State     `json:"state"`
	At     time.Time `json:"at"`
	Reply  string    `json:"reply,omitempty"`
	Next   time.Time `json:"next,omitzero"`
	Warned []int     `json:"warned,omitempty"`
}

// warning is how a delay warning's record is written: without the fields
// of an attempt, which it is not, and with recipient -1, so that a reader
// from before warnings refuses the line rather than take it for an attempt
// of recipient 0.
type warning struct {
	Rcpt   int       `json:"rcpt"`
	Warned []int     `json:"warned"`
	At     time.Time `json:"at"`
}

// readEnvelope reads the envelope line at the start of a message file and
// returns it with the line's length.
func readEnvelope(r *bufio.Reader) (*Envelope, int64, error) {
	line, err := readLine(r, maxEnvelopeLine)
	if err != nil {
		return nil, 0, fmt.Errorf("envelope: %w", err)
	}
	var env Envelope
	if err := json.Unmarshal(line, &env); err != nil {
		return nil, 0, fmt.Errorf("envelope: %w", err)
	}
	if env.V != formatVersion {
		return nil, 0, fmt.Errorf("envelope: format version %d, want %d", env.V, formatVersion)
	}
	if !ValidID(env.ID) {
		return nil, 0, fmt.Errorf("envelope: %w: %q", ErrBadID, env.ID)
	}
	if len(env.Recipients) == 0 {
		return nil, 0, errors.New("envelope: no recipients")
	}
	for i, rc := range env.Recipients {
		if rc == nil || rc.Addr == "" {
			return nil, 0, fmt.Errorf("envelope: recipient %d is empty", i)
		}
	}
	return &env, int64(len(line)), nil
}

// readLine reads one line including its newline, refusing lines over max.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > max {
			return nil, fmt.Errorf("line longer than %d bytes", max)
		}
		switch {
		case err == nil:
			return line, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, io.ErrUnexpectedEOF
		default:
			return nil, err
		}
	}
}

// applyLog applies a state log to the envelope's recipients. A final line
// without a newline is a write cut short by a crash and is skipped.
func (env *Envelope) applyLog(log []byte) error {
	for n := 1; len(log) > 0; n++ {
		i := bytes.IndexByte(log, '\n')
		if i < 0 {
			return nil // torn final write
		}
		var rec record
		if err := json.Unmarshal(log[:i], &rec); err != nil {
			return fmt.Errorf("state log line %d: %w", n, err)
		}
		if err := env.apply(&rec); err != nil {
			return fmt.Errorf("state log line %d: %w", n, err)
		}
		log = log[i+1:]
	}
	return nil
}

func (env *Envelope) apply(rec *record) error {
	if rec.Warned != nil {
		for _, i := range rec.Warned {
			if i < 0 || i >= len(env.Recipients) {
				return fmt.Errorf("warned recipient %d out of range", i)
			}
		}
		for _, i := range rec.Warned {
			env.Recipients[i].Warned = rec.At
		}
		return nil
	}
	if rec.Rcpt < 0 || rec.Rcpt >= len(env.Recipients) {
		return fmt.Errorf("recipient %d out of range", rec.Rcpt)
	}
	rc := env.Recipients[rec.Rcpt]
	rc.State = rec.State
	rc.Attempts++
	rc.LastAttempt = rec.At
	rc.LastReply = rec.Reply
	rc.NextAttempt = rec.Next
	return nil
}

// Pending lists the indexes of the recipients that still need delivery.
func (env *Envelope) Pending() []int {
	var idx []int
	for i, rc := range env.Recipients {
		if !rc.State.Done() {
			idx = append(idx, i)
		}
	}
	return idx
}
