package queue

import (
	"os"
	"syscall"
)

// crashAt names the step at which this process kills itself with SIGKILL, for
// the crash-safety tests that run the real binaries (YUBIN_TEST_CRASH_AT=step).
// Steps: created, written, synced, renamed, committed, logged.
var crashAt = os.Getenv("YUBIN_TEST_CRASH_AT")

func crashPoint(step string) {
	if crashAt == step {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
