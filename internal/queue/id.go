package queue

import (
	"math/rand/v2"
	"sync"
	"time"
)

// crockford is Crockford's base32 alphabet: no I, L, O or U, so an ID read
// aloud or copied by hand survives.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// IDLen is the length of every queue ID.
const IDLen = 14

var lastID struct {
	sync.Mutex
	micros int64
}

// newID returns a fresh queue ID for a message arriving at t. Within one
// process IDs strictly increase even when the clock stalls or steps back.
func newID(t time.Time) string {
	lastID.Lock()
	us := t.UnixMicro()
	if us <= lastID.micros {
		us = lastID.micros + 1
	}
	lastID.micros = us
	lastID.Unlock()

	var b [IDLen]byte
	put := func(pos, width int, v uint64) {
		for i := pos + width - 1; i >= pos; i-- {
			b[i] = crockford[v&31]
			v >>= 5
		}
	}
	put(0, 7, uint64(us/1e6))
	put(7, 4, uint64(us%1e6))
	put(11, 3, rand.Uint64())
	return string(b[:])
}

// ValidID reports whether s has the form of a queue ID. Every ID that comes
// from outside (a command line, a directory entry) is checked before it
// becomes part of a path.
func ValidID(s string) bool {
	if len(s) != IDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isIDChar(s[i]) {
			return false
		}
	}
	return true
}

func isIDChar(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'A' && c <= 'Z' && c != 'I' && c != 'L' && c != 'O' && c != 'U'
}
