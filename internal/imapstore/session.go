package imapstore

import (
	"errors"
	"io/fs"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"yubin/internal/auth"
	"yubin/internal/mailbox"
	"yubin/internal/maildir"
	"yubin/internal/maillog"
)

// Session is one client's session: imapserver calls its methods, one
// command at a time (Idle excepted, which runs while the connection waits
// for DONE).
type Session struct {
	opts     *Options
	client   string
	login    string // the name logged in with
	root     string // the user's Maildir
	failures int
	sel      *selected
	onClose  func()
	conn     *imapserver.Conn
	out      *heldConn // under conn: IDLE flushes its updates
}

var _ imapserver.SessionIMAP4rev2 = (*Session)(nil)

// selected is the selected folder and what the client has been told of it.
type selected struct {
	name      string
	f         *folder
	readOnly  bool
	view      []*message // sequence number i+1 is view[i]; read through messages()
	told      []string   // the flags last sent for view[i]
	lazy      *entries   // when not nil, view and told are yet to be made from these
	gen       int        // f.gen when view was last compared with f
	searchRes imap.UIDSet
	// fields caches the header fields searched in this session: lower-case
	// name → UID → the fields' decoded values (a message's header does not
	// change: a new file is a new UID).
	fields      map[string]map[imap.UID][]string
	fieldsCount int
}

// maxFailures failed logins end the session, as in pop3d.
const maxFailures = 5

// The answers the store gives; a server fault is logged, the client gets
// a short NO [SERVERBUG] or [UNAVAILABLE].
var (
	errNoMailbox = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeNonExistent, Text: "No such mailbox"}
	errTryCreate = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeTryCreate, Text: "No such mailbox"}
	errExists    = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlreadyExists, Text: "Mailbox already exists"}
	errBadName   = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Invalid mailbox name"}
	errInbox     = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "INBOX cannot be deleted"}
	errReadOnly  = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeCannot, Text: "Mailbox is read-only (EXAMINE)"}
	errLogin     = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "The mailbox cannot be opened now, try again later"}
	errOverQuota = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeOverQuota, Text: "Quota exceeded"}
	// RFC 9051 §9 (seq-number): a tagged BAD for a sequence number beyond
	// the last message, "*" in an empty mailbox included.
	errBadSeq = &imap.Error{Type: imap.StatusResponseTypeBad, Code: imap.ResponseCodeClientBug, Text: "Sequence number beyond the last message"}
)

// fault logs err and returns what the client is told; an *imap.Error is
// that already.
func (s *Session) fault(what string, err error) error {
	if ie := (*imap.Error)(nil); errors.As(err, &ie) {
		return ie
	}
	if errors.Is(err, maildir.ErrOverQuota) {
		return errOverQuota
	}
	if errors.Is(err, fs.ErrNotExist) {
		return errNoMailbox
	}
	maillog.ServerError("imap", s.client, s.login, what+": "+err.Error())
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeServerBug, Text: "Internal error, try again later"}
}

// Close ends the session.
func (s *Session) Close() error {
	if s.sel != nil {
		s.sel.f.saveCache() // write down what the session learnt (sizes)
	}
	if s.onClose != nil {
		s.onClose()
	}
	return nil
}

// Login checks the password, makes the process the user (Options,
// SwitchUser) and opens the user's Maildir, creating it and the special
// folders when missing.
func (s *Session) Login(name, password string) error {
	u, local, domain, err := auth.ResolveLogin(s.opts.Users, name, s.opts.Hostname)
	if err != nil && !errors.Is(err, auth.ErrNoUser) {
		maillog.Auth("imap", name, "LOGIN", "tempfail", err.Error(), s.client, s.failures)
		return errLogin
	}
	if err := s.opts.Users.Authenticate(u, password); err != nil {
		if !errors.Is(err, auth.ErrBadPassword) {
			maillog.Auth("imap", name, "LOGIN", "tempfail", err.Error(), s.client, s.failures)
			return errLogin
		}
		s.failures++
		maillog.Auth("imap", name, "LOGIN", "fail", strings.TrimPrefix(err.Error(), auth.ErrBadPassword.Error()+": "), s.client, s.failures)
		if s.opts.FailureDelay > 0 {
			time.Sleep(min(time.Duration(s.failures), 5) * s.opts.FailureDelay)
		}
		if s.failures >= maxFailures && s.conn != nil {
			s.conn.Bye("Too many failed logins")
		}
		return imapserver.ErrAuthFailed
	}
	dir, err := mailbox.ExpandMailDir(s.opts.MailDir, local, domain, u.Home)
	if err != nil {
		maillog.Auth("imap", name, "LOGIN", "tempfail", err.Error(), s.client, s.failures)
		return errLogin
	}
	if err := s.opts.SwitchUser(u); err != nil {
		maillog.Auth("imap", name, "LOGIN", "tempfail", err.Error(), s.client, s.failures)
		// Half switched, the process can serve nobody: end the session.
		if s.conn != nil {
			s.conn.Bye("The mailbox cannot be opened now, try again later")
		}
		return errLogin
	}
	s.root, s.login = dir, name
	if err := s.openAccount(); err != nil {
		maillog.Auth("imap", name, "LOGIN", "tempfail", err.Error(), s.client, s.failures)
		return errLogin
	}
	maillog.Auth("imap", name, "LOGIN", "ok", "", s.client, s.failures)
	return nil
}

// Namespace: one personal namespace, "." as hierarchy delimiter (Maildir++).
func (s *Session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: Delim}}}, nil
}

// Select opens a folder; new/ moves to cur/ unless read-only (EXAMINE).
func (s *Session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	if s.sel != nil {
		s.Unselect()
	}
	f, err := s.folder(name)
	if err != nil {
		return nil, err
	}
	readOnly := options != nil && options.ReadOnly
	if err := f.sync(!readOnly); err != nil {
		return nil, s.fault("select "+name, err)
	}
	// The view is the folder as of this rescan: nothing to compare at the
	// next poll unless the folder is rescanned meanwhile.
	sel := &selected{name: name, f: f, readOnly: readOnly, gen: f.gen}
	data := &imap.SelectData{UIDNext: f.uidNext, UIDValidity: f.uidValidity}
	if es := f.lazy; es != nil {
		// The list stood for the folder (nothing recent, nothing in new/
		// to move): its count and first unseen line are the answer, and
		// the view is made at the first command that needs it.
		sel.lazy = es
		data.NumMessages, data.FirstUnseenSeqNum = uint32(es.count), uint32(es.firstUnseen)
	} else {
		msgs := f.messages()
		sel.view, sel.told = make([]*message, 0, len(msgs)), make([]string, 0, len(msgs))
		for i, m := range msgs {
			sel.view = append(sel.view, m)
			sel.told = append(sel.told, m.info+recentMark(m))
			if m.recent {
				data.NumRecent++
			}
			if data.FirstUnseenSeqNum == 0 && !hasLetter(m, 'S') {
				data.FirstUnseenSeqNum = uint32(i + 1)
			}
		}
		data.NumMessages = uint32(len(sel.view))
	}
	data.Flags = []imap.Flag{imap.FlagSeen, imap.FlagAnswered, imap.FlagFlagged, imap.FlagDeleted, imap.FlagDraft}
	for _, k := range f.keywords {
		if k != "" {
			data.Flags = append(data.Flags, imap.Flag(k))
		}
	}
	if !readOnly {
		data.PermanentFlags = append(data.PermanentFlags, data.Flags...)
		if len(f.keywords) < 26 {
			data.PermanentFlags = append(data.PermanentFlags, imap.FlagWildcard)
		}
	}
	s.sel = sel
	return data, nil
}

// messages returns the view, making it first when SELECT left it to be
// made: from the list's lines SELECT counted, with the flags they gave
// (what the client was told), whatever the folder's rescans found since;
// the next poll reports the difference.
func (sel *selected) messages() []*message {
	if es := sel.lazy; es != nil {
		// Copies: the view loses expunged messages, told changes.
		sel.view, sel.told, sel.lazy = slices.Clone(es.records()), slices.Clone(es.infos), nil
	}
	return sel.view
}

// drop takes view[i] out of the view (expunged).
func (sel *selected) drop(i int) {
	sel.messages()
	sel.view = append(sel.view[:i], sel.view[i+1:]...)
	sel.told = append(sel.told[:i], sel.told[i+1:]...)
}

func recentMark(m *message) string {
	if m.recent {
		return "r"
	}
	return ""
}

// Unselect leaves the selected folder.
func (s *Session) Unselect() error {
	if s.sel != nil {
		s.sel.f.saveCache()
	}
	s.sel = nil
	return nil
}

// Poll reports what others changed in the selected folder: new messages
// (EXISTS), flags (FETCH), and, when allowed, removed messages (EXPUNGE).
func (s *Session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	sel := s.sel
	if sel == nil {
		return nil
	}
	if err := sel.f.sync(!sel.readOnly); err != nil {
		return s.fault("rescan "+sel.name, err)
	}
	if sel.gen == sel.f.gen {
		return nil // nothing listed since the last poll
	}
	sel.gen = sel.f.gen
	msgs := sel.f.messages()
	present := make(map[imap.UID]*message, len(msgs))
	for _, m := range msgs {
		present[m.uid] = m
	}
	if allowExpunge {
		for i := len(sel.messages()) - 1; i >= 0; i-- {
			if present[sel.view[i].uid] == nil {
				if err := w.WriteExpunge(uint32(i + 1)); err != nil {
					return err
				}
				sel.drop(i)
			}
		}
	}
	for i, m := range sel.messages() {
		cur := present[m.uid]
		if cur == nil {
			continue
		}
		if now := cur.info + recentMark(cur); now != sel.told[i] {
			sel.view[i] = cur
			sel.told[i] = now
			if err := w.WriteMessageFlags(uint32(i+1), cur.uid, sel.f.flags(cur)); err != nil {
				return err
			}
		}
	}
	var last imap.UID
	if n := len(sel.view); n > 0 {
		last = sel.view[n-1].uid
	}
	added := false
	for _, m := range msgs {
		if m.uid > last {
			sel.view = append(sel.view, m)
			sel.told = append(sel.told, m.info+recentMark(m))
			added = true
		}
	}
	if added {
		return w.WriteNumMessages(uint32(len(sel.view)))
	}
	return nil
}

// Idle rescans the selected folder every IdleTick until stop, and ends the
// session with BYE after IdleTimeout. imapserver's own limit for IDLE is
// its 35 min between commands, set when IDLE starts (after this goroutine
// starts): each tick puts the read deadline past IdleTimeout again.
func (s *Session) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	end := time.Now().Add(s.opts.IdleTimeout)
	t := time.NewTicker(s.opts.IdleTick)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return nil
		case now := <-t.C:
			if now.After(end) {
				return s.conn.Bye("Autologout: IDLE for too long")
			}
			s.conn.NetConn().SetReadDeadline(end.Add(time.Minute))
			if err := s.Poll(w, true); err != nil {
				return err
			}
			if err := s.out.Flush(); err != nil {
				return err
			}
		}
	}
}

// forEach calls fn for the messages of numSet, in sequence order, looking
// only at the ranges of the set (sequence numbers index the view; UIDs are
// found by binary search, the view being in UID order).
func (sel *selected) forEach(numSet imap.NumSet, fn func(seq uint32, m *message) error) error {
	if imap.IsSearchRes(numSet) {
		numSet = sel.searchRes
	}
	n := len(sel.messages())
	var spans [][2]int // view indexes, inclusive
	switch set := numSet.(type) {
	case imap.SeqSet:
		for _, r := range set {
			if n == 0 || r.Start > uint32(n) || r.Stop > uint32(n) {
				return errBadSeq
			}
		}
		for _, r := range staticSeq(set, uint32(n)) {
			lo, hi := int(r.Start)-1, min(int(r.Stop), n)-1
			if lo <= hi {
				spans = append(spans, [2]int{lo, hi})
			}
		}
	case imap.UIDSet:
		var last imap.UID
		if n > 0 {
			last = sel.view[n-1].uid
		}
		for _, r := range staticUID(set, last) {
			lo := sort.Search(n, func(i int) bool { return sel.view[i].uid >= r.Start })
			hi := sort.Search(n, func(i int) bool { return sel.view[i].uid > r.Stop }) - 1
			if lo <= hi {
				spans = append(spans, [2]int{lo, hi})
			}
		}
	}
	slices.SortFunc(spans, func(a, b [2]int) int { return a[0] - b[0] })
	next := 0 // the first index not yet visited
	for _, sp := range spans {
		for i := max(sp[0], next); i <= sp[1]; i++ {
			if err := fn(uint32(i+1), sel.view[i]); err != nil {
				return err
			}
		}
		next = max(next, sp[1]+1)
	}
	return nil
}

// staticSeq replaces "*" (0) by the last sequence number.
func staticSeq(set imap.SeqSet, last uint32) imap.SeqSet {
	out := make(imap.SeqSet, len(set))
	for i, r := range set {
		r.Start, r.Stop = static(r.Start, r.Stop, last)
		out[i] = r
	}
	return out
}

func staticUID(set imap.UIDSet, last imap.UID) imap.UIDSet {
	out := make(imap.UIDSet, len(set))
	for i, r := range set {
		a, b := static(uint32(r.Start), uint32(r.Stop), uint32(last))
		out[i] = imap.UIDRange{Start: imap.UID(a), Stop: imap.UID(b)}
	}
	return out
}

func static(start, stop, last uint32) (uint32, uint32) {
	if start == 0 {
		start = last
	}
	if stop == 0 {
		stop = last
	}
	if start > stop {
		start, stop = stop, start
	}
	return start, stop
}

// Store changes flags, renaming the files under the folder lock.
func (s *Session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	unlock, err := sel.f.lock()
	if err != nil {
		return s.fault("store", err)
	}
	kw, err := readKeywords(sel.f.dir)
	if err != nil {
		unlock()
		return s.fault("store", err)
	}
	sel.f.keywords = kw
	type changed struct {
		seq uint32
		m   *message
	}
	var done []changed
	err = sel.forEach(numSet, func(seq uint32, m *message) error {
		cur := sel.f.flags(m)
		var want []imap.Flag
		switch flags.Op {
		case imap.StoreFlagsSet:
			want = flags.Flags
		case imap.StoreFlagsAdd:
			want = append(cur, flags.Flags...)
		case imap.StoreFlagsDel:
			for _, c := range cur {
				drop := false
				for _, d := range flags.Flags {
					drop = drop || strings.EqualFold(string(c), string(d))
				}
				if !drop {
					want = append(want, c)
				}
			}
		}
		info, added := sel.f.letters(want)
		if added {
			if err := writeKeywords(sel.f.dir, sel.f.keywords); err != nil {
				return err
			}
		}
		if err := sel.f.setInfo(m, info); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // expunged meanwhile: reported on the next poll
			}
			return err
		}
		done = append(done, changed{seq, m})
		return nil
	})
	unlock()
	if err != nil {
		return s.fault("store", err)
	}
	for _, c := range done {
		sel.told[c.seq-1] = c.m.info + recentMark(c.m)
		if !flags.Silent {
			rw := w.CreateMessage(c.seq)
			rw.WriteUID(c.m.uid)
			rw.WriteFlags(sel.f.flags(c.m))
			if err := rw.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}

// Expunge removes the messages flagged \Deleted (of uids, when not nil).
func (s *Session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	sel := s.sel
	if sel.readOnly {
		return errReadOnly
	}
	var gone []int
	for i, m := range sel.messages() {
		if hasLetter(m, 'T') && (uids == nil || uids.Contains(m.uid)) {
			gone = append(gone, i)
		}
	}
	if len(gone) == 0 {
		return nil
	}
	if err := s.remove(sel, gone); err != nil {
		return err
	}
	for j := len(gone) - 1; j >= 0; j-- {
		i := gone[j]
		if err := w.WriteExpunge(uint32(i + 1)); err != nil {
			return err
		}
		sel.drop(i)
	}
	return nil
}

// remove deletes the files of view[i] for i in idx under the folder lock
// and takes them out of the folder's list.
func (s *Session) remove(sel *selected, idx []int) error {
	unlock, err := sel.f.lock()
	if err != nil {
		return s.fault("expunge", err)
	}
	defer unlock()
	for _, i := range idx {
		m := sel.messages()[i]
		err := os.Remove(sel.f.dir + "/" + m.file())
		if errors.Is(err, fs.ErrNotExist) {
			if files, lerr := listDir(sel.f.dir); lerr == nil {
				if fi, ok := files[m.base]; ok {
					m.sub, m.info = fi[0], fi[1]
					err = os.Remove(sel.f.dir + "/" + m.file())
				}
			}
		}
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return s.fault("expunge", err)
		}
	}
	syncDir(sel.f.dir + "/cur")
	if err := sel.f.syncLocked(false, false); err != nil {
		return s.fault("expunge", err)
	}
	return nil
}
