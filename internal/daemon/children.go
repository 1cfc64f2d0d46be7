package daemon

import (
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
)

// SpawnSelf runs a standalone server: on each listener, every session in a
// child process of this same program started with args(l) (its "-i" form),
// without systemd's LISTEN_ variables, until SIGTERM or SIGINT (sessions in
// progress go on in their own processes) or a listener fails. proto and
// busy are as for Spawn.
func SpawnSelf(listeners []Listener, args func(l Listener) []string, proto, busy string) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	env := slices.DeleteFunc(os.Environ(), func(v string) bool { return strings.HasPrefix(v, "LISTEN_") })
	errs := make(chan error, len(listeners))
	for _, l := range listeners {
		a := args(l)
		go func() {
			errs <- Spawn(l, func() *exec.Cmd {
				cmd := exec.Command(self, a...)
				cmd.Env, cmd.Stderr = env, os.Stderr
				return cmd
			}, 0, proto, busy)
		}()
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
		return nil
	case err := <-errs:
		return err
	}
}
