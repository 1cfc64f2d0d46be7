// Package crashpoint lets the crash-safety tests kill a real binary at a
// named step of a durable write: with YUBIN_TEST_CRASH_AT=step in its
// environment, a process that reaches Here(step) sends itself SIGKILL. The
// tests then check what a crash at exactly that instant leaves on disk.
// Without the variable, Here does nothing.
package crashpoint

import (
	"os"
	"syscall"
)

var at = os.Getenv("YUBIN_TEST_CRASH_AT")

// Here kills the process when step is the one the test asked for.
func Here(step string) {
	if at == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
