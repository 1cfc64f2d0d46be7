package imapstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"

	"yubin/internal/maildir"
)

// Delim is the hierarchy delimiter: Maildir++'s ".".
const Delim = '.'

// specialUse are the folders every account gets on first login (RFC 6154).
var specialUse = []struct {
	name string
	attr imap.MailboxAttr
}{
	{"Sent", imap.MailboxAttrSent},
	{"Drafts", imap.MailboxAttrDrafts},
	{"Trash", imap.MailboxAttrTrash},
	{"Junk", imap.MailboxAttrJunk},
	{"Archive", imap.MailboxAttrArchive},
}

func isInbox(name string) bool { return strings.EqualFold(name, "INBOX") }

// validName accepts a folder name that can be a directory ".name": no "/",
// no empty level, no control characters, not "INBOX" under another case.
func validName(name string) bool {
	if name == "" || len(name) > 200 || strings.ContainsRune(name, '/') || name[0] == Delim ||
		name[len(name)-1] == Delim || strings.Contains(name, "..") {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return true
}

// dirOf is the directory of folder name: the root for INBOX.
func (s *Session) dirOf(name string) (string, error) {
	if isInbox(name) {
		return s.root, nil
	}
	if !validName(name) {
		return "", errBadName
	}
	return filepath.Join(s.root, "."+name), nil
}

// folder opens an existing folder.
func (s *Session) folder(name string) (*folder, error) {
	dir, err := s.dirOf(name)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(filepath.Join(dir, "cur")); err != nil || !fi.IsDir() {
		return nil, errNoMailbox
	}
	return &folder{dir: dir}, nil
}

// openAccount makes the Maildir and the special-use folders when missing.
func (s *Session) openAccount() error {
	if err := maildir.Dir(s.root).Init(); err != nil {
		return err
	}
	for _, su := range specialUse {
		dir := filepath.Join(s.root, "."+su.name)
		if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
			if err := makeFolder(dir); err != nil {
				return err
			}
			s.setSubscribed(su.name, true)
		}
	}
	return nil
}

// makeFolder creates a Maildir++ folder: the Maildir and its
// "maildirfolder" marker.
func makeFolder(dir string) error {
	if err := maildir.Dir(dir).Init(); err != nil {
		return err
	}
	return writeFileSync(filepath.Join(dir, "maildirfolder"), nil)
}

// Create makes a folder (the parents of a Maildir++ folder need not exist).
func (s *Session) Create(name string, options *imap.CreateOptions) error {
	name = strings.TrimSuffix(name, string(Delim))
	if isInbox(name) {
		return errExists
	}
	dir, err := s.dirOf(name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err == nil {
		return errExists
	}
	if err := makeFolder(dir); err != nil {
		return s.fault("create "+name, err)
	}
	return nil
}

// Delete removes a folder and its messages; its children stay.
func (s *Session) Delete(name string) error {
	if isInbox(name) {
		return errInbox
	}
	dir, err := s.dirOf(name)
	if err != nil {
		return err
	}
	if _, err := os.Stat(dir); err != nil {
		return errNoMailbox
	}
	if s.sel != nil && s.sel.f.dir == dir {
		s.sel = nil
	}
	// Rename first: a crash leaves no half-deleted folder visible.
	trash := filepath.Join(s.root, "..yubin-deleting-"+strings.ReplaceAll(name, ".", "_"))
	if err := os.Rename(dir, trash); err != nil {
		return s.fault("delete "+name, err)
	}
	syncDir(s.root)
	if err := os.RemoveAll(trash); err != nil {
		return s.fault("delete "+name, err)
	}
	s.setSubscribed(name, false)
	return nil
}

// Rename renames a folder and its children; INBOX's messages move to the
// new folder and INBOX stays, empty (renameInbox).
func (s *Session) Rename(name, newName string, options *imap.RenameOptions) error {
	if isInbox(newName) {
		return errExists // INBOX always exists
	}
	if isInbox(name) {
		return s.renameInbox(newName)
	}
	if _, err := s.dirOf(name); err != nil {
		return err
	}
	to, err := s.dirOf(newName)
	if err != nil {
		return err
	}
	names, err := s.folderNames()
	if err != nil {
		return s.fault("rename", err)
	}
	// A parent may exist only through its children (Maildir++ is flat).
	if !slices.ContainsFunc(names, func(n string) bool { return n == name || strings.HasPrefix(n, name+string(Delim)) }) {
		return errNoMailbox
	}
	if _, err := os.Stat(to); err == nil {
		return errExists
	}
	for _, n := range names {
		if n == name || strings.HasPrefix(n, name+string(Delim)) {
			rest := strings.TrimPrefix(n, name)
			if err := os.Rename(filepath.Join(s.root, "."+n), filepath.Join(s.root, "."+newName+rest)); err != nil {
				return s.fault("rename "+n, err)
			}
			if s.subscribed(n) {
				s.setSubscribed(n, false)
				s.setSubscribed(newName+rest, true)
			}
		}
	}
	return syncDir(s.root)
}

// renameInbox moves every message of INBOX into a new folder, INBOX
// staying, empty (RFC 9051 §6.3.5); INBOX's children are not touched.
// Each message moves by one rename(2) under INBOX's lock, so a crash
// leaves it in one folder or the other, and INBOX's UIDs are not given
// again (its UID list keeps UIDNEXT). tmp/, deliveries in flight, stays.
func (s *Session) renameInbox(newName string) error {
	to, err := s.dirOf(newName)
	if err != nil {
		return err
	}
	if _, err := os.Stat(to); err == nil {
		return errExists
	}
	if err := makeFolder(to); err != nil {
		return s.fault("rename INBOX", err)
	}
	inbox := &folder{dir: s.root}
	unlock, err := inbox.lock()
	if err != nil {
		return s.fault("rename INBOX", err)
	}
	defer unlock()
	// The keyword letters in the names mean what INBOX's list says.
	kw, err := readKeywords(s.root)
	if err == nil && len(kw) > 0 {
		err = writeKeywords(to, kw)
	}
	if err != nil {
		return s.fault("rename INBOX", err)
	}
	for _, sub := range []string{"new", "cur"} {
		ents, err := os.ReadDir(filepath.Join(s.root, sub))
		if err != nil {
			return s.fault("rename INBOX", err)
		}
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".") {
				continue
			}
			err := os.Rename(filepath.Join(s.root, sub, e.Name()), filepath.Join(to, sub, e.Name()))
			if err != nil && !errors.Is(err, fs.ErrNotExist) { // gone: expunged meanwhile
				return s.fault("rename INBOX", err)
			}
		}
		for _, dir := range []string{to, s.root} {
			if err := syncDir(filepath.Join(dir, sub)); err != nil {
				return s.fault("rename INBOX", err)
			}
		}
	}
	return nil
}

// folderNames lists the folders below the root (not INBOX).
func (s *Session) folderNames() ([]string, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if len(n) < 2 || n[0] != '.' || n[1] == '.' || !e.IsDir() {
			continue
		}
		if fi, err := os.Stat(filepath.Join(s.root, n, "cur")); err != nil || !fi.IsDir() {
			continue
		}
		names = append(names, n[1:])
	}
	slices.Sort(names)
	return names, nil
}

// The subscriptions file: one folder name a line (Courier's and Dovecot's).
func (s *Session) subscriptions() []string {
	data, _ := os.ReadFile(filepath.Join(s.root, subscriptionsFile))
	var l []string
	for _, line := range strings.Split(string(data), "\n") {
		if line != "" {
			l = append(l, line)
		}
	}
	return l
}

func (s *Session) subscribed(name string) bool {
	return slices.Contains(s.subscriptions(), name)
}

func (s *Session) setSubscribed(name string, on bool) error {
	l := slices.DeleteFunc(s.subscriptions(), func(n string) bool { return n == name })
	if on {
		l = append(l, name)
	}
	data := strings.Join(l, "\n")
	if data != "" {
		data += "\n"
	}
	return writeFileSync(filepath.Join(s.root, subscriptionsFile), []byte(data))
}

// Subscribe adds name to the subscriptions.
func (s *Session) Subscribe(name string) error {
	if _, err := s.folder(name); err != nil {
		return err
	}
	if err := s.setSubscribed(name, true); err != nil {
		return s.fault("subscribe", err)
	}
	return nil
}

// Unsubscribe removes name from the subscriptions.
func (s *Session) Unsubscribe(name string) error {
	if err := s.setSubscribed(name, false); err != nil {
		return s.fault("unsubscribe", err)
	}
	return nil
}

// List answers LIST and LSUB (SelectSubscribed).
func (s *Session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	if len(patterns) == 1 && patterns[0] == "" {
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: Delim})
	}
	names, err := s.folderNames()
	if err != nil {
		return s.fault("list", err)
	}
	// Parents that exist only through their children are listed
	// \Noselect, as Dovecot lists them.
	exists := make(map[string]bool, len(names))
	for _, n := range names {
		exists[n] = true
	}
	for _, n := range names {
		for i := strings.IndexByte(n, Delim); i > 0; i = indexFrom(n, Delim, i+1) {
			if _, ok := exists[n[:i]]; !ok && !isInbox(n[:i]) {
				exists[n[:i]] = false
				names = append(names, n[:i])
			}
		}
	}
	slices.Sort(names)
	names = append([]string{"INBOX"}, slices.Compact(names)...)
	subs := s.subscriptions()
	for _, name := range names {
		match := false
		for _, p := range patterns {
			match = match || imapserver.MatchList(name, Delim, ref, p)
		}
		if !match {
			continue
		}
		sub := slices.Contains(subs, name) || isInbox(name) && slices.ContainsFunc(subs, isInbox)
		if options.SelectSubscribed && !sub {
			continue
		}
		data := &imap.ListData{Mailbox: name, Delim: Delim}
		if !isInbox(name) && !exists[name] {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		var su imap.MailboxAttr
		for _, x := range specialUse {
			if x.name == name {
				su = x.attr
			}
		}
		if options.SelectSpecialUse && su == "" {
			continue
		}
		if su != "" {
			data.Attrs = append(data.Attrs, su)
		}
		if sub && (options.ReturnSubscribed || options.SelectSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		children := slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, name+string(Delim)) })
		if children {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if options.ReturnStatus != nil {
			if st, err := s.Status(name, options.ReturnStatus); err == nil {
				data.Status = st
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
	}
	return nil
}

// Status reads a folder's counts; it gives UIDs to new messages but leaves
// them in new/.
func (s *Session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	f, err := s.folder(name)
	if err != nil {
		return nil, err
	}
	if s.sel != nil && s.sel.f.dir == f.dir {
		f = s.sel.f
	}
	if err := f.sync(false); err != nil {
		return nil, s.fault("status "+name, err)
	}
	data := &imap.StatusData{Mailbox: name}
	msgs := f.messages()
	n := uint32(len(msgs))
	var unseen, deleted, recent uint32
	var size int64
	for _, m := range msgs {
		if !hasLetter(m, 'S') {
			unseen++
		}
		if hasLetter(m, 'T') {
			deleted++
		}
		if m.sub == "new" || m.recent {
			recent++
		}
		if options.Size {
			size += f.sizeOf(m)
		}
	}
	if options.NumMessages {
		data.NumMessages = &n
	}
	if options.UIDNext {
		data.UIDNext = f.uidNext
	}
	if options.UIDValidity {
		data.UIDValidity = f.uidValidity
	}
	if options.NumUnseen {
		data.NumUnseen = &unseen
	}
	if options.NumDeleted {
		data.NumDeleted = &deleted
	}
	if options.NumRecent {
		data.NumRecent = &recent
	}
	if options.Size {
		data.Size = &size
		f.saveCache() // keep the sizes learnt
	}
	return data, nil
}

// indexFrom is the index of c in s at or after i, or -1.
func indexFrom(s string, c byte, i int) int {
	if j := strings.IndexByte(s[i:], c); j >= 0 {
		return i + j
	}
	return -1
}
