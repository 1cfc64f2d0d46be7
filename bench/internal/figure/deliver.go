package figure

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// User is the i-th of dirs bench users u000…: the name of message i's
// recipient when mail is spread over dirs Maildirs.
func User(i, dirs int) string { return fmt.Sprintf("u%03d", i%dirs) }

// WriteUsers writes a users_file of the bench users u000… (dirs of them),
// all with the running uid and gid, so that delivery needs no privilege
// switch.
func WriteUsers(path string, dirs int) error {
	var users strings.Builder
	for i := range dirs {
		fmt.Fprintf(&users, "%s:*:%d:%d:\n", User(i, dirs), os.Geteuid(), os.Getegid())
	}
	return os.WriteFile(path, []byte(users.String()), 0o644)
}

// DeliverRate runs `deliver -f bench@bench.test USER < msg` n times, par at
// a time, into dirs Maildirs under base (users of a users_file written
// there), and checks that the Maildirs then hold every message.
func DeliverRate(deliver, base, msg string, n, par, dirs int) (float64, error) {
	if err := os.MkdirAll(base, 0o755); err != nil {
		return 0, err
	}
	usersFile := filepath.Join(base, "users")
	conf := filepath.Join(base, "yubin.conf")
	text := fmt.Sprintf("hostname = bench.test\nusers_file = %s\nmail_dir = %s\n", usersFile, filepath.Join(base, "mail", "%u"))
	if err := WriteUsers(usersFile, dirs); err != nil {
		return 0, err
	}
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return 0, err
	}
	env := append(os.Environ(), "YUBIN_CONF="+conf)
	send := func(_, i int) error {
		in, err := os.Open(msg)
		if err != nil {
			return err
		}
		defer in.Close()
		cmd := exec.Command(deliver, "-f", "bench@bench.test", User(i, dirs))
		cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = in, os.Stdout, os.Stderr, env
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("%s %s: %w", deliver, User(i, dirs), err)
		}
		return nil
	}
	// Warm the page cache with the binary, and create the Maildirs, so
	// that the figure is of deliveries alone.
	if _, err := Parallel(dirs, min(par, dirs), send); err != nil {
		return 0, err
	}
	r, err := Parallel(n, par, send)
	if err != nil {
		return 0, err
	}
	return r, Count(filepath.Join(base, "mail"), dirs+n/par*par)
}

// Count checks that the Maildirs under base hold want messages in new/.
func Count(base string, want int) error {
	files, err := filepath.Glob(filepath.Join(base, "*", "new", "*"))
	if err != nil {
		return err
	}
	if len(files) != want {
		return fmt.Errorf("%s: %d messages in new/, want %d: %w", base, len(files), want, errWithheld)
	}
	return nil
}
