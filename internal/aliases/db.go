package aliases

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"yubin/internal/cdb"
	"yubin/internal/safeio"
)

const (
	formatKey  = "\x00format"
	formatText = "yubin-aliases 1"
	sourceKey  = "\x00source"
)

// DBPath is where the database of the aliases file path lives.
func DBPath(path string) string { return path + ".cdb" }

// stamp identifies one state of the text: its size and modification time.
type stamp struct {
	size  int64
	mtime int64 // nanoseconds since the epoch
}

func (s stamp) String() string { return fmt.Sprintf("%d %d", s.size, s.mtime) }

func stampOf(fi fs.FileInfo) stamp {
	return stamp{size: fi.Size(), mtime: fi.ModTime().UnixNano()}
}

// ReadFile parses the aliases file at path, remembering its size and
// modification time for WriteDB. A group- or world-writable file is refused
// (err wraps ErrUnsafeFile); bad lines are returned in errs.
func ReadFile(path string) (f *File, errs []error, err error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer fd.Close()
	fi, err := fd.Stat()
	if err != nil {
		return nil, nil, err
	}
	if err := checkSafe(path, fi); err != nil {
		return nil, nil, err
	}
	f, errs = Parse(path, fd)
	for _, e := range errs {
		if le, ok := e.(*Error); ok && le.Line == 0 {
			return nil, nil, e // a read error, not a bad line
		}
	}
	f.stamp = stampOf(fi)
	return f, errs, nil
}

// checkSafe refuses a file that is not regular or that others may write.
func checkSafe(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &Error{File: path, Err: errors.New("not a regular file")}
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return &Error{File: path, Err: fmt.Errorf("%w (mode %04o): its pipes would run as the mail owner", ErrUnsafeFile, fi.Mode().Perm())}
	}
	return nil
}

// Stats returns what newaliases reports, counted as sendmail counts: the
// number of aliases, the longest value in bytes, and the bytes of all names
// and values.
func (f *File) Stats() (aliases, longest, total int) {
	for _, a := range f.Aliases {
		aliases++
		longest = max(longest, len(a.Value))
		total += len(a.Name) + len(a.Value)
	}
	return aliases, longest, total
}

// WriteDB compiles f into the database at path (DBPath of the aliases file),
// durably and atomically: a temporary file in the same directory, fsync,
// rename, fsync of the directory.
func (f *File) WriteDB(path string) error {
	b := cdb.NewBuilder()
	if err := b.Add([]byte(formatKey), []byte(formatText)); err != nil {
		return err
	}
	if err := b.Add([]byte(sourceKey), []byte(f.stamp.String())); err != nil {
		return err
	}
	for _, a := range f.Aliases {
		if err := b.Add([]byte(a.Name), encodeTargets(a.Targets)); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	// Readers are the runner and smtpd, as other users than root.
	err := safeio.WriteFile(path, 0o644, func(w io.Writer) error {
		_, err := b.WriteTo(w)
		return err
	})
	if err != nil {
		return fmt.Errorf("aliases database: %w", err)
	}
	return nil
}

// encodeTargets: per target, kind byte, uvarint line, uvarint length, text.
func encodeTargets(ts []Target) []byte {
	var b []byte
	for _, t := range ts {
		b = append(b, byte(t.Kind))
		b = binary.AppendUvarint(b, uint64(t.Line))
		b = binary.AppendUvarint(b, uint64(len(t.Value)))
		b = append(b, t.Value...)
	}
	return b
}

func decodeTargets(b []byte) ([]Target, error) {
	var ts []Target
	for len(b) > 0 {
		k := Kind(b[0])
		if k < Local || k > Append {
			return nil, fmt.Errorf("%w: bad target kind %d", cdb.ErrCorrupt, k)
		}
		line, n := binary.Uvarint(b[1:])
		if n <= 0 || line > 1<<31 {
			return nil, fmt.Errorf("%w: bad target line", cdb.ErrCorrupt)
		}
		b = b[1+n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > uint64(len(b)-n) {
			return nil, fmt.Errorf("%w: bad target length", cdb.ErrCorrupt)
		}
		b = b[n:]
		ts = append(ts, Target{Kind: k, Line: int(line), Value: string(b[:size])})
		b = b[size:]
	}
	return ts, nil
}

// DB answers alias lookups, from the compiled database or from the text.
// It is safe for concurrent use. A DB from Open keeps the database file open
// and does not see a later newaliases: open a new one for each queue run.
type DB struct {
	Path    string // the aliases file
	file    *os.File
	cdb     *cdb.Reader
	aliases map[string][]Target // when read from the text
}

// New returns a DB over a parsed file (no database file involved).
func New(f *File) *DB {
	db := &DB{Path: f.Name, aliases: make(map[string][]Target, len(f.Aliases))}
	for _, a := range f.Aliases {
		db.aliases[a.Name] = a.Targets
	}
	return db
}

// Open returns the aliases of the file at path ("" for none). It reads the
// database DBPath(path) when it was compiled from the text as the text is
// now; otherwise it parses the text and returns, beside the DB, a warning for
// the caller to log (the database is missing or out of date, and any bad
// lines, which are left out). With neither file there are no aliases but the
// defaults. err is set when nothing usable could be read.
func Open(path string) (db *DB, warning error, err error) {
	if path == "" {
		return &DB{aliases: map[string][]Target{}}, nil, nil
	}
	textInfo, textErr := os.Stat(path)
	if textErr != nil && !errors.Is(textErr, fs.ErrNotExist) {
		return nil, nil, textErr
	}
	dbPath := DBPath(path)
	db, source, err := openDB(dbPath)
	switch {
	case err == nil && (textErr != nil || source == stampOf(textInfo).String()):
		db.Path = path
		return db, nil, nil
	case err == nil:
		db.Close()
		warning = fmt.Errorf("%s is out of date (run newaliases): using %s", dbPath, path)
	case errors.Is(err, fs.ErrNotExist) && textErr != nil:
		return &DB{Path: path, aliases: map[string][]Target{}}, nil, nil
	case errors.Is(err, fs.ErrNotExist):
		warning = fmt.Errorf("%s does not exist (run newaliases): using %s", dbPath, path)
	case textErr != nil:
		return nil, nil, err
	default:
		warning = fmt.Errorf("%w: using %s", err, path)
	}
	f, errs, err := ReadFile(path)
	if err != nil {
		return nil, nil, err
	}
	if len(errs) > 0 {
		warning = errors.Join(append([]error{warning}, errs...)...)
	}
	return New(f), warning, nil
}

// openDB opens a database and returns the source stamp it records.
func openDB(path string) (*DB, string, error) {
	fd, err := os.Open(path)
	if err != nil {
		return nil, "", err
	}
	fi, err := fd.Stat()
	if err == nil {
		err = checkSafe(path, fi)
	}
	var r *cdb.Reader
	if err == nil {
		r, err = cdb.NewReader(fd, fi.Size())
	}
	if err != nil {
		fd.Close()
		return nil, "", err
	}
	format, ok, err := r.Get([]byte(formatKey))
	if err == nil && (!ok || string(format) != formatText) {
		err = fmt.Errorf("%s: not a yubin aliases database (format %q)", path, format)
	}
	var source []byte
	if err == nil {
		source, _, err = r.Get([]byte(sourceKey))
	}
	if err != nil {
		fd.Close()
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return &DB{file: fd, cdb: r}, string(source), nil
}

// Close releases the database file.
func (db *DB) Close() error {
	if db.file != nil {
		return db.file.Close()
	}
	return nil
}

// defaults resolve when the file does not name them.
var defaults = map[string][]Target{
	"postmaster":    {{Kind: Local, Value: "root"}},
	"mailer-daemon": {{Kind: Local, Value: "root"}},
}

// Lookup returns the targets of the alias name (folded and unquoted here),
// with the defaults for postmaster and mailer-daemon; ok is false when there
// is no such alias.
func (db *DB) Lookup(name string) (targets []Target, ok bool, err error) {
	name = foldName(name)
	if name == "" || strings.HasPrefix(name, "\x00") {
		return nil, false, nil
	}
	if db.cdb != nil {
		v, found, err := db.cdb.Get([]byte(name))
		if err != nil {
			return nil, false, fmt.Errorf("%s: %w", DBPath(db.Path), err)
		}
		if found {
			ts, err := decodeTargets(v)
			if err != nil {
				return nil, false, fmt.Errorf("%s: alias %q: %w", DBPath(db.Path), name, err)
			}
			return ts, true, nil
		}
	} else if ts, found := db.aliases[name]; found {
		return ts, true, nil
	}
	ts, found := defaults[name]
	return ts, found, nil
}

// source names where the targets of an alias are written, for messages.
func (db *DB) source(t Target) string {
	if db.Path == "" || t.Line == 0 {
		return ""
	}
	return db.Path + ":" + strconv.Itoa(t.Line)
}

// foldName unquotes a quoted local part and folds it to lower case.
func foldName(name string) string {
	if s, ok := unquote(name); ok {
		name = s
	}
	return strings.ToLower(name)
}

// isNotExist reports errors that mean there is no file to read.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
