package relay

import (
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Connection reuse, as Postfix's connection cache: a connection whose
// transaction ended cleanly waits up to Options.CacheTime (2 s) for the next
// message to the same server, and is not reused once it is reuseLimit old.
const (
	defaultCacheTime = 2 * time.Second   // smtp_connection_cache_time_limit
	reuseLimit       = 300 * time.Second // smtp_connection_reuse_time_limit
	defaultCacheSize = 100               // idle connections kept, all servers
	quitTimeout      = 2 * time.Second   // for the QUIT of a connection we close
)

// connKey is what a connection was set up with; it is reused only for the
// same server address, MX name (what its certificate was checked against
// and what results name), TLS level and login.
type connKey struct {
	addr  netip.AddrPort
	name  string
	level TLSLevel
	auth  bool
}

// session is an open connection, past EHLO, STARTTLS and AUTH.
type session struct {
	c     *smtp.Client
	tc    *timeoutConn // under c (and its TLS), for a short QUIT
	key   connKey
	born  time.Time
	timer *time.Timer // closes it when idle too long; set while cached
}

// quit ends s politely, waiting at most quitTimeout for the server.
func (s *session) quit() {
	s.tc.timeout = quitTimeout // s is ours alone: nobody reads or writes now
	if s.c.Quit() != nil {
		s.c.Close()
	}
}

// cache holds idle sessions, oldest first.
type cache struct {
	idleTime time.Duration // <0: no reuse
	size     int

	mu     sync.Mutex
	idle   []*session
	closed bool
}

// get takes the newest idle session set up as k, or returns nil.
func (ca *cache) get(k connKey) *session {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	for i := len(ca.idle) - 1; i >= 0; i-- {
		if s := ca.idle[i]; s.key == k {
			ca.idle = slices.Delete(ca.idle, i, i+1)
			s.timer.Stop()
			return s
		}
	}
	return nil
}

// put keeps s, between transactions, for the next get, or ends it when
// reuse is off, s is too old or the Relay is closed. A full cache ends
// its oldest session to make room.
func (ca *cache) put(s *session) {
	ca.mu.Lock()
	if ca.closed || ca.idleTime < 0 || time.Since(s.born) >= reuseLimit {
		ca.mu.Unlock()
		s.quit()
		return
	}
	var evicted *session
	if len(ca.idle) >= ca.size {
		evicted = ca.idle[0]
		evicted.timer.Stop()
		ca.idle = slices.Delete(ca.idle, 0, 1)
	}
	ca.idle = append(ca.idle, s)
	s.timer = time.AfterFunc(ca.idleTime, func() { ca.expire(s) })
	ca.mu.Unlock()
	if evicted != nil {
		evicted.quit()
	}
}

// expire ends s if it is still idle in the cache.
func (ca *cache) expire(s *session) {
	ca.mu.Lock()
	i := slices.Index(ca.idle, s)
	if i >= 0 {
		ca.idle = slices.Delete(ca.idle, i, i+1)
	}
	ca.mu.Unlock()
	if i >= 0 {
		s.quit()
	}
}

// close ends every idle session and every session put from now on.
func (ca *cache) close() {
	ca.mu.Lock()
	ca.closed = true
	idle := ca.idle
	ca.idle = nil
	for _, s := range idle {
		s.timer.Stop()
	}
	ca.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range idle {
		wg.Go(s.quit)
	}
	wg.Wait()
}
