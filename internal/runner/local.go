package runner

import (
	"bufio"
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"

	"yubin/internal/status"
)

// local makes the mailbox copies: one run of the deliver program per
// envelope sender, naming every user once, with its -s status lines:
//
//	USER<TAB>EXIT<TAB>TEXT
//
// EXIT is a sysexits.h code (0 delivered; status.FromExit gives the rest
// their RFC 3463 code, temporary or permanent). A user without a line, a
// deliver that could not be started, or one killed, is a temporary failure.
func (a *attempt) local(ctx context.Context, copies []*copy) {
	bySender := map[string][]*copy{}
	var senders []string
	for _, c := range copies {
		if bySender[c.d.Sender] == nil {
			senders = append(senders, c.d.Sender)
		}
		bySender[c.d.Sender] = append(bySender[c.d.Sender], c)
	}
	for _, sender := range senders {
		group := bySender[sender]
		users := map[string][]*copy{}
		var names []string
		for _, c := range group {
			if users[c.d.Value] == nil {
				names = append(names, c.d.Value)
			}
			users[c.d.Value] = append(users[c.d.Value], c)
		}
		results := a.deliver(ctx, sender, names)
		for _, name := range names {
			for _, c := range users[name] {
				a.done(c, results[name])
			}
		}
	}
}

// deliver runs the deliver program for users and returns each one's outcome.
func (a *attempt) deliver(ctx context.Context, sender string, users []string) map[string]outcome {
	args := append(append([]string{}, a.r.o.DeliverArgs...), "-s", "-f", sender)
	if sender == "" {
		args[len(args)-1] = "<>"
	}
	args = append(args, "--")
	args = append(args, users...)
	cmd := exec.CommandContext(ctx, a.r.o.Deliver, args...)
	cmd.Stdin = bytes.NewReader(a.body)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	results := map[string]outcome{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 3)
		if len(f) != 3 {
			continue
		}
		code, cerr := strconv.Atoi(f[1])
		if cerr != nil {
			continue
		}
		var o outcome
		if code == 0 {
			o = newOutcome("2.0.0", f[2])
		} else if e, ok := status.FromExit(code); ok {
			o = newOutcome(e.DSN, f[2])
		} else {
			o = newOutcome("4.3.0", f[2])
		}
		if code != 0 {
			o.diag, o.diagType = strconv.Itoa(code)+" "+f[2], "x-unix"
		}
		o.relay, o.finalRcpt = "local", qualify(f[0], a.r.o.Hostname)
		results[f[0]] = o
	}
	for _, u := range users {
		if _, ok := results[u]; !ok {
			why := "deliver gave no status"
			if err != nil {
				why = "deliver: " + err.Error()
			}
			if s := strings.TrimSpace(stderr.String()); s != "" {
				why += ": " + s
			}
			o := newOutcome("4.3.0", why)
			o.relay, o.finalRcpt = "local", qualify(u, a.r.o.Hostname)
			results[u] = o
		}
	}
	return results
}

func qualify(user, domain string) string {
	if strings.Contains(user, "@") {
		return user
	}
	return user + "@" + domain
}
