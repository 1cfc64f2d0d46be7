// Package imapstore is yubin's IMAP server: the mail store behind
// go-imap v2's imapserver (which speaks the protocol), over the users'
// Maildirs, one session on one connection per process.
//
// # Protocol
//
// IMAP4rev1 (RFC 3501) and IMAP4rev2 (RFC 9051) as imapserver implements
// them, with NAMESPACE, UIDPLUS (APPENDUID, COPYUID, UID EXPUNGE), ESEARCH,
// SEARCHRES, LIST-EXTENDED, LIST-STATUS, MOVE, STATUS=SIZE, BINARY,
// CHILDREN, SPECIAL-USE, IDLE, ENABLE, UNSELECT, SASL-IR, STARTTLS (when
// Options.TLS is set) and LOGIN or AUTHENTICATE PLAIN. Passwords are refused
// (LOGINDISABLED, [PRIVACYREQUIRED]) on a connection without TLS from a
// non-loopback address unless Options.PlaintextAuth; a connection that is
// not TCP (a pipe) counts as local. Login names resolve as pop3d's and
// deliver's do (auth.ResolveLogin, mailbox.ExpandMailDir); a failed login
// is answered after a delay growing with each failure (1 s, 2 s, ... 5 s),
// and the fifth ends the session.
// After login the process becomes the user for good (daemon.BecomeUser).
// Timeouts are imapserver's constants (beta.8 has no option for them): 30 s
// without a command before login, 35 min (RFC 9051 §5.4's 30 minutes at
// least) once logged in, 30 s for the rest of a command line once begun,
// 5 min for a literal, 30 s for a reply to be written (5 min for a
// literal). IDLE alone is the store's: it moves the read deadline past
// Options.IdleTimeout (2 h) and ends the session with BYE then.
//
// A sequence number beyond the last message, "*" in an empty mailbox
// included, is BAD (RFC 9051 §9, seq-number); a set imapserver cannot
// parse ("0:x") is its NO [SERVERBUG], before the store is asked.
// RENAME INBOX moves INBOX's messages into the new folder and leaves INBOX,
// empty (RFC 9051 §6.3.5): one rename(2) per message under INBOX's lock.
//
// Replies: imapserver flushes after every response line; the connection
// under it (heldConn) holds the bytes until the server next reads from
// the client, a batch would pass 64 KB, IDLE has sent an update, or the
// connection closes, so that a command's whole answer is one write(2).
//
// # On disk
//
// The account is a Maildir++ tree, the layout of Courier and Dovecot, so
// that existing mailboxes open as they are: INBOX is the Maildir itself,
// folder "Name" is the Maildir ".Name" below it and "Parent.Child" is
// ".Parent.Child" ("." is the hierarchy delimiter; names are UTF-8 on disk,
// modified UTF-7 on the wire through imapserver). A folder is created with
// tmp/, new/, cur/ and an empty "maildirfolder" file; Sent, Drafts, Trash,
// Junk and Archive are created (and subscribed) at the first login and
// listed with their RFC 6154 attributes. "subscriptions" in the root holds
// the subscribed names, one a line. DELETE renames the folder away before
// removing it, so that a crash leaves no half-deleted folder.
//
// Messages: flags are the name's info ":2,LETTERS" (D \Draft, F \Flagged,
// R \Answered, S \Seen, T \Deleted, letters sorted); keywords are the
// letters a-z, listed per folder in "yubin-keywords" as "N name" lines
// (letter 'a'+N, the format of Dovecot's dovecot-keywords). Selecting a
// folder read-write moves new/ to cur/ (appending ":2,"); those messages
// are \Recent to that session. EXAMINE and STATUS leave new/ alone.
// Messages are sent with CRLF line ends whatever the file holds, and
// RFC822.SIZE counts them so.
//
// UIDs live in "yubin-uidlist" in each folder:
//
//	yubin-uidlist 1 UIDVALIDITY UIDNEXT NEW-STAMP CUR-STAMP SETTLED
//	UID SIZE DATE PLACE UNIQUE-NAME
//	...
//
// one line per message in UID order, read and checked in one pass at every
// SELECT (UIDs rising below UIDNEXT, names unique: rising, or else by sorted
// 64-bit hashes) and parsed into records later, once, at the first command
// that needs them (the names are substrings of the file's one string, the
// records one slice). UNIQUE-NAME is the file name up to ":2,"; PLACE is
// "n" (in new/) or "c,LETTERS" (in cur/ with those flags); SIZE is the
// size as sent and DATE the internal date (Unix seconds), each "-" until
// first needed. The stamps are new/'s and cur/'s modification
// time (ns), inode and size, "MTIME:INO:SIZE", when the list was written,
// and SETTLED is 1 when both were then more than a second old.
//
// The list is a cache of the directory, never trusted over it: a folder
// is rescanned under its lock (flock on "yubin-uidlist.lock") at SELECT,
// after every command, on NOOP and every IDLE tick. A rescan lists new/
// and cur/ unless the list is SETTLED and both stamps are unchanged (then
// no file was added, renamed or removed since: a change within the clock's
// tick of a stamp cannot hide, the stamps being a second old), and within
// a session it is skipped while the stamps of new/, cur/ and the list stay
// as the last rescan left them, settled. A rescan drops the lines of
// messages gone (listing once more first, in case of a rename in flight),
// gives the next UIDs to new names in delivery order, and rewrites the
// list (internal/safeio: a temporary file, fsync, rename, fsync the folder) when
// UIDs changed, and at the end of a session when places, flags, sizes or
// stamps did. UIDs are given only under that lock and UIDNEXT never goes
// down, so no UID changes or is given twice whatever sessions, deliver(8)
// runs or crashes happen. A missing or damaged list (UIDs not rising,
// names given twice) starts again with a new UIDVALIDITY: the time, or the
// last one given plus one (the lock file holds the last one, in decimal, so
// that a list rebuilt within the same second gets a new one).
//
// A SELECT or EXAMINE whose rescan takes the list for the directory, with
// no records of the session's to merge it with (its first of the folder),
// answers from the check alone: the number of lines, the first without S
// (UNSEEN), UIDNEXT and UIDVALIDITY, and no \Recent (SELECT takes the list
// so only when no line is in new/; otherwise it lists and moves them). The
// session's view (the sequence numbers) is made at the first command that
// needs it, from the lines checked at SELECT with the flags they gave, so
// that what others changed meanwhile is reported as after any SELECT; a
// rescan before that parses the lines first, to merge them with the
// directory. So SELECT, FETCH FLAGS or RFC822.SIZE and searches on flags
// or sizes of an unchanged folder read neither the directory nor a
// message file; a size not yet in the list comes from a ",W=" in the name
// (Dovecot's) or from reading the file once.
//
// Writes: APPEND, COPY and MOVE deliver through internal/maildir (tmp/,
// fsync, link into new/, fsync new/; Maildir++ quota), then under the lock
// set the date, rename into cur/ with the flags, fsync cur/ and assign the
// UIDs. STORE renames under the lock. EXPUNGE and MOVE unlink under the
// lock and fsync cur/; MOVE copies first, so a crash leaves a message in
// both folders, never in none.
package imapstore
