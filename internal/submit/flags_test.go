package submit

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want Options
	}{
		// Real callers, as they invoke sendmail.
		{
			name: "cron",
			// cronie do_command.c MAILARGS "%s -FCronDaemon -i -odi -oem -oi -t -f %s"
			args: []string{"-FCronDaemon", "-i", "-odi", "-oem", "-oi", "-t", "-f", "root"},
			want: Options{FullName: "CronDaemon", IgnoreDots: true, DeliveryMode: 'i', ErrorMode: 'm',
				ExtractRecipients: true, Sender: "root", SenderSet: true},
		},
		{
			name: "cron with -B8BITMIME",
			args: []string{"-FCronDaemon", "-i", "-B8BITMIME", "-oem", "-oi", "-t", "-f", "root"},
			want: Options{FullName: "CronDaemon", IgnoreDots: true, Body: "8BITMIME", ErrorMode: 'm',
				ExtractRecipients: true, Sender: "root", SenderSet: true},
		},
		{
			name: "alpine",
			args: []string{"-bs", "-odb", "-oem"},
			want: Options{Mode: ModeSMTP, DeliveryMode: 'b', ErrorMode: 'm'},
		},
		{
			name: "php mail()",
			args: []string{"-t", "-i"},
			want: Options{ExtractRecipients: true, IgnoreDots: true},
		},
		{
			name: "mutt",
			args: []string{"-oem", "-oi"},
			want: Options{ErrorMode: 'm', IgnoreDots: true},
		},
		{
			name: "mutt with recipients",
			args: []string{"-oem", "-oi", "--", "a@example.org", "b@example.org"},
			want: Options{ErrorMode: 'm', IgnoreDots: true, Recipients: []string{"a@example.org", "b@example.org"}},
		},
		{
			name: "git send-email",
			args: []string{"-i", "a@example.org", "b@example.org"},
			want: Options{IgnoreDots: true, Recipients: []string{"a@example.org", "b@example.org"}},
		},
		{
			name: "symfony mailer",
			args: []string{"-bs"},
			want: Options{Mode: ModeSMTP},
		},
		{name: "mailq", args: []string{"-bp"}, want: Options{Mode: ModePrintQueue}},
		{name: "newaliases", args: []string{"-bi"}, want: Options{Mode: ModeInitAliases}},
		{name: "-I is -bi", args: []string{"-I"}, want: Options{Mode: ModeInitAliases}},
		{
			// sendmail 8 obsolete(): -q alone becomes -q0, a single run.
			name: "-q",
			args: []string{"-q"},
			want: Options{Mode: ModeQueueRun},
		},
		{name: "-q30m", args: []string{"-q30m"}, want: Options{Mode: ModeQueueRun, QueueInterval: 30 * time.Minute}},
		{
			name: "-qIabc",
			args: []string{"-qIabc"},
			want: Options{Mode: ModeQueueRun, QueueSelect: []QueueSelect{{Field: 'I', Value: "abc"}}},
		},
		{
			// sendmail 8: an empty -f argument is "<>".
			name: "null sender",
			args: []string{"-f", "", "user"},
			want: Options{SenderSet: true, Recipients: []string{"user"}},
		},
		{
			name: "-N",
			args: []string{"-N", "success,failure", "a@b"},
			want: Options{Notify: "SUCCESS,FAILURE", Recipients: []string{"a@b"}},
		},
		{
			name: "full name, sender, --",
			args: []string{"-F", "Full Name", "-f", "user@x", "--", "a@b", "c@d"},
			want: Options{FullName: "Full Name", Sender: "user@x", SenderSet: true, Recipients: []string{"a@b", "c@d"}},
		},

		// getopt rules.
		{name: "cluster", args: []string{"-ti"}, want: Options{ExtractRecipients: true, IgnoreDots: true}},
		{
			name: "cluster ending in an option with a separate argument",
			args: []string{"-tif", "root"},
			want: Options{ExtractRecipients: true, IgnoreDots: true, Sender: "root", SenderSet: true},
		},
		{
			name: "cluster ending in an option with an attached argument",
			args: []string{"-tifroot"},
			want: Options{ExtractRecipients: true, IgnoreDots: true, Sender: "root", SenderSet: true},
		},
		{name: "attached argument", args: []string{"-fuser"}, want: Options{Sender: "user", SenderSet: true}},
		{name: "-r is -f", args: []string{"-r", "user@x"}, want: Options{Sender: "user@x", SenderSet: true}},
		{
			// The argument may look like an option: getopt takes it as it is.
			name: "argument that begins with a dash",
			args: []string{"-F", "-t"},
			want: Options{FullName: "-t"},
		},
		{name: "-- then a dash word", args: []string{"--", "-t"}, want: Options{Recipients: []string{"-t"}}},
		{
			// Postfix's GETOPT is "+": no permutation, the first
			// non-option ends the options.
			name: "options end at the first recipient",
			args: []string{"a@b", "-t"},
			want: Options{Recipients: []string{"a@b", "-t"}},
		},
		{name: "dash alone is a recipient", args: []string{"-i", "-"}, want: Options{IgnoreDots: true, Recipients: []string{"-"}}},
		{
			// Postfix parses each recipient word as an address list.
			name: "recipient lists and display names",
			args: []string{"a@b, c@d", "Joe <joe@x>", "root"},
			want: Options{Recipients: []string{"a@b", "c@d", "joe@x", "root"}},
		},
		{name: "sender <>", args: []string{"-f", "<>"}, want: Options{SenderSet: true}},
		{name: "sender with display name", args: []string{"-f", "Joe <joe@x>"}, want: Options{Sender: "joe@x", SenderSet: true}},
		{name: "sender in brackets", args: []string{"-f<joe@x>"}, want: Options{Sender: "joe@x", SenderSet: true}},
		{name: "last -f wins (Postfix)", args: []string{"-f", "a@x", "-f", "b@x"}, want: Options{Sender: "b@x", SenderSet: true}},

		// -q: sendmail 8 main.c and obsolete().
		{
			// obsolete() skips over "30m" as -q's value, so it is the
			// interval, not a recipient (Postfix refuses this form).
			name: "-q 30m",
			args: []string{"-q", "30m"},
			want: Options{Mode: ModeQueueRun, QueueInterval: 30 * time.Minute},
		},
		{
			name: "-q before an option runs once",
			args: []string{"-q", "-v"},
			want: Options{Mode: ModeQueueRun, Verbose: true},
		},
		{name: "-q default unit is minutes", args: []string{"-q1h30"}, want: Options{Mode: ModeQueueRun, QueueInterval: 90 * time.Minute}},
		{name: "-q days and weeks", args: []string{"-q1w2d"}, want: Options{Mode: ModeQueueRun, QueueInterval: 9 * 24 * time.Hour}},
		{name: "-q seconds", args: []string{"-q45s"}, want: Options{Mode: ModeQueueRun, QueueInterval: 45 * time.Second}},
		{name: "-qp persistent", args: []string{"-qp"}, want: Options{Mode: ModeQueueRun, QueueInterval: time.Second}},
		{name: "-qp with interval", args: []string{"-qp5m"}, want: Options{Mode: ModeQueueRun, QueueInterval: 5 * time.Minute}},
		{name: "-qf foreground", args: []string{"-qf"}, want: Options{Mode: ModeQueueRun}},
		{name: "-qG one queue group", args: []string{"-qGmain"}, want: Options{Mode: ModeQueueRun, Ignored: []string{"-qGmain"}}},
		{
			name: "-q selections and negation",
			args: []string{"-qRexample.org", "-q!Sroot", "-q", "!Iabc"},
			want: Options{Mode: ModeQueueRun, QueueSelect: []QueueSelect{
				{Field: 'R', Value: "example.org"}, {Field: 'S', Value: "root", Negate: true}, {Field: 'I', Value: "abc", Negate: true}}},
		},
		{
			// sendmail 8: -q does not override -bp, whatever the order.
			name: "-bp with -q selects what to list",
			args: []string{"-qIabc", "-bp"},
			want: Options{Mode: ModePrintQueue, QueueSelect: []QueueSelect{{Field: 'I', Value: "abc"}}},
		},
		{name: "-bd -q30m", args: []string{"-bd", "-q30m"}, want: Options{Mode: ModeDaemon, QueueInterval: 30 * time.Minute}},
		{name: "-bm -q", args: []string{"-bm", "-q"}, want: Options{Mode: ModeQueueRun}},

		// -b modes.
		{name: "-bm", args: []string{"-bm", "a@b"}, want: Options{Recipients: []string{"a@b"}}},
		{name: "-bD", args: []string{"-bD"}, want: Options{Mode: ModeDaemon, Foreground: true}},
		{name: "-bd", args: []string{"-bd"}, want: Options{Mode: ModeDaemon}},
		{name: "-bv", args: []string{"-bv", "a@b"}, want: Options{Mode: ModeVerify, Recipients: []string{"a@b"}}},
		{name: "-bh (Postfix: ignored)", args: []string{"-bh"}, want: Options{Mode: ModeHostStatus}},
		{name: "-bH", args: []string{"-bH"}, want: Options{Mode: ModeHostStatus}},
		{name: "-b takes its first letter only", args: []string{"-bpx"}, want: Options{Mode: ModePrintQueue}},
		{name: "last -b wins", args: []string{"-bp", "-bm"}, want: Options{}},

		// -o and -O.
		{name: "-oi false", args: []string{"-i", "-oiFalse"}, want: Options{}},
		{name: "-oee", args: []string{"-oee"}, want: Options{ErrorMode: 'e'}},
		{name: "-e is -oe", args: []string{"-e", "p"}, want: Options{ErrorMode: 'p'}},
		{name: "-oe unknown is ignored (sendmail 8)", args: []string{"-oez"}, want: Options{Ignored: []string{"-oez"}}},
		{name: "-odq", args: []string{"-odq"}, want: Options{DeliveryMode: 'q'}},
		{name: "-odd", args: []string{"-odd"}, want: Options{DeliveryMode: 'd'}},
		{name: "-od alone is interactive", args: []string{"-od"}, want: Options{DeliveryMode: 'i'}},
		{name: "-o with separate argument", args: []string{"-o", "i"}, want: Options{IgnoreDots: true}},
		{
			name: "-o others ignored",
			args: []string{"-oQ/var/spool/mqueue", "-oA/etc/aliases", "-om", "-o8", "-oXtrace"},
			want: Options{Ignored: []string{"-oQ/var/spool/mqueue", "-oA/etc/aliases", "-om", "-o8", "-oXtrace"}},
		},
		{
			name: "-O long options",
			args: []string{"-O", "DeliveryMode=background", "-OIgnoreDots=true", "-O", "errormode = q", "-O", "Timeout.queuereturn=5d"},
			want: Options{DeliveryMode: 'b', IgnoreDots: true, ErrorMode: 'q', Ignored: []string{"-OTimeout.queuereturn=5d"}},
		},
		{name: "-O IgnoreDots alone is true", args: []string{"-O", "IgnoreDots"}, want: Options{IgnoreDots: true}},

		// DSN and the rest.
		{name: "-N never", args: []string{"-Nnever"}, want: Options{Notify: "NEVER"}},
		{name: "-N any case and order", args: []string{"-N", "Failure, DELAY,success"}, want: Options{Notify: "SUCCESS,DELAY,FAILURE"}},
		{name: "-B 7bit", args: []string{"-B", "7bit"}, want: Options{Body: "7BIT"}},
		{name: "-R hdrs", args: []string{"-R", "hdrs"}, want: Options{Ret: "HDRS"}},
		{name: "-R FULL", args: []string{"-RFULL"}, want: Options{Ret: "FULL"}},
		{name: "-V", args: []string{"-V", "envid-1+2B"}, want: Options{EnvID: "envid-1+2B"}},
		{name: "-C", args: []string{"-C", "/etc/yubin/test.conf"}, want: Options{Config: "/etc/yubin/test.conf"}},
		{
			// obsolete(): -C without a file uses the default configuration.
			name: "-C alone",
			args: []string{"-C", "-t"},
			want: Options{ExtractRecipients: true, Ignored: []string{"-C"}},
		},
		{name: "-v", args: []string{"-v"}, want: Options{Verbose: true}},

		// Accepted and ignored, as Postfix does.
		{
			name: "ignored flags without argument",
			args: []string{"-G", "-U", "-n", "-m", "-c", "-s", "-x", "-T", "-S"},
			want: Options{Ignored: []string{"-G", "-U", "-n", "-m", "-c", "-s", "-x", "-T", "-S"}},
		},
		{
			name: "ignored flags with argument",
			args: []string{"-h", "5", "-Ltag", "-X", "/tmp/log", "-Am", "-Mxvalue", "-p", "smtp:host", "-Dfile", "-Qreason", "a@b"},
			want: Options{Ignored: []string{"-h5", "-Ltag", "-X/tmp/log", "-Am", "-Mxvalue", "-psmtp:host", "-Dfile", "-Qreason"},
				Recipients: []string{"a@b"}},
		},
		{
			// obsolete(): -d alone never takes the next word.
			name: "-d alone",
			args: []string{"-d", "a@b"},
			want: Options{Ignored: []string{"-d0-99.1"}, Recipients: []string{"a@b"}},
		},
		{name: "-d with level", args: []string{"-d0.1"}, want: Options{Ignored: []string{"-d0.1"}}},
		{
			// Postfix: -XV alone is VERP and takes no argument.
			name: "-XV",
			args: []string{"-XV", "a@b"},
			want: Options{Ignored: []string{"-XV"}, Recipients: []string{"a@b"}},
		},
		{
			// OpenSMTPD: -E and -J take an argument only when attached.
			name: "-E and -J",
			args: []string{"-E", "-Jx", "a@b"},
			want: Options{Ignored: []string{"-E", "-Jx"}, Recipients: []string{"a@b"}},
		},
	}
	for _, tt := range tests {
		got, err := ParseArgs(tt.args)
		if err != nil {
			t.Errorf("%s: ParseArgs(%q): %v", tt.name, tt.args, err)
			continue
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("%s: ParseArgs(%q)\n got %+v\nwant %+v", tt.name, tt.args, *got, tt.want)
		}
	}
}

func TestParseArgsUsageError(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string // in the message
	}{
		{name: "unknown letter", args: []string{"-k"}, want: "invalid option -- 'k'"},
		{name: "unknown letter in a cluster", args: []string{"-tiZ"}, want: "invalid option -- 'Z'"},
		{name: "colon is no option", args: []string{"-:"}, want: "invalid option"},
		{name: "missing argument", args: []string{"-f"}, want: "requires an argument -- 'f'"},
		{name: "missing argument in a cluster", args: []string{"-tF"}, want: "requires an argument -- 'F'"},
		{name: "bad -B", args: []string{"-B", "BINARYMIME"}, want: "-B"},
		{name: "bad -N", args: []string{"-N", "sometimes"}, want: "-N"},
		{name: "-N never with others", args: []string{"-N", "never,success"}, want: "never goes alone"},
		{name: "empty -N", args: []string{"-N", ""}, want: "-N"},
		{name: "bad -R", args: []string{"-R", "all"}, want: "-R"},
		{name: "empty -V", args: []string{"-V", ""}, want: "-V"},
		{name: "long -V", args: []string{"-V", strings.Repeat("x", 101)}, want: "-V"},
		{name: "-V with space", args: []string{"-V", "a b"}, want: "-V"},
		{name: "-bt (Postfix refuses)", args: []string{"-bt"}, want: "unsupported mode -bt"},
		{name: "-ba", args: []string{"-ba"}, want: "unsupported mode"},
		{name: "-bP", args: []string{"-bP"}, want: "unsupported mode"},
		{name: "empty -b", args: []string{"-b", ""}, want: "unsupported mode"},
		{name: "unknown delivery mode (sendmail 8)", args: []string{"-odx"}, want: "unknown delivery mode"},
		{name: "unknown long delivery mode", args: []string{"-O", "DeliveryMode=xyz"}, want: "unknown delivery mode"},
		{name: "bad time unit", args: []string{"-q30x"}, want: "invalid time unit"},
		{name: "interval without number", args: []string{"-qm"}, want: "bad interval"},
		{name: "interval overflow", args: []string{"-q99999999999999999999w"}, want: "too long"},
		{
			// sendmail 8 takes the word as -q's value and fails on it;
			// Postfix refuses a recipient in flush mode.
			name: "-q then a recipient",
			args: []string{"-q", "user@example.org"},
			want: "-quser@example.org",
		},
		{name: "negated interval", args: []string{"-q!30m"}, want: "only I, R and S"},
		{name: "negated nothing", args: []string{"-q!"}, want: "missing selector"},
		{name: "-qI without ID", args: []string{"-qI"}, want: "missing value"},
		{name: "-qL", args: []string{"-qL"}, want: "no lost or quarantined"},
		{name: "-qQ", args: []string{"-qQ"}, want: "no lost or quarantined"},
		{name: "-q with -bs (sendmail 8)", args: []string{"-bs", "-q"}, want: "-q cannot be used with -bs"},
		{name: "-q with -I", args: []string{"-I", "-q"}, want: "-q cannot be used with -I"},
		{name: "-t with -bp (Postfix)", args: []string{"-t", "-bp"}, want: "-t can be used only in delivery mode"},
		{name: "-t with -bv (Postfix)", args: []string{"-bv", "-t", "a@b"}, want: "-t can be used only"},
		{name: "recipients with -bp (Postfix)", args: []string{"-bp", "a@b"}, want: "takes none"},
		{name: "recipients with -bi", args: []string{"-bi", "a@b"}, want: "takes none"},
		{name: "recipients with -bs", args: []string{"-bs", "a@b"}, want: "takes none"},
		{name: "recipients with -qI (Postfix)", args: []string{"-qIabc", "a@b"}, want: "takes none"},
		{name: "recipients with -bd", args: []string{"-bd", "a@b"}, want: "takes none"},
		{name: "two senders in -f", args: []string{"-f", "a@b, c@d"}, want: "not one address"},
		{name: "unparseable sender", args: []string{"-f", "a@"}, want: "-f"},
		{name: "control character in sender", args: []string{"-f", "a@b\nc"}, want: "-f"},
	}
	for _, tt := range tests {
		got, err := ParseArgs(tt.args)
		var ue *UsageError
		if !errors.As(err, &ue) {
			t.Errorf("%s: ParseArgs(%q) = %+v, %v; want a *UsageError", tt.name, tt.args, got, err)
			continue
		}
		if !strings.Contains(ue.Msg, tt.want) {
			t.Errorf("%s: ParseArgs(%q): %q does not say %q", tt.name, tt.args, ue.Msg, tt.want)
		}
	}
}

// A recipient that is no address is the user's error in the address, not in
// the flags: EX_NOUSER rather than EX_USAGE.
func TestParseArgsAddressError(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{name: "empty recipient", args: []string{"--", ""}, want: "empty address"},
		{name: "recipients without comma", args: []string{"a@b c@d"}, want: "recipient"},
		{name: "unterminated angle", args: []string{"<a@b"}, want: "missing '>'"},
		{name: "control character in recipient", args: []string{"a@b\r\nRCPT TO:<x@y>"}, want: "recipient"},
	}
	for _, tt := range tests {
		got, err := ParseArgs(tt.args)
		var ae *AddressError
		if !errors.As(err, &ae) {
			t.Errorf("%s: ParseArgs(%q) = %+v, %v; want an *AddressError", tt.name, tt.args, got, err)
			continue
		}
		if !strings.Contains(ae.Error(), tt.want) {
			t.Errorf("%s: ParseArgs(%q): %q does not say %q", tt.name, tt.args, ae.Error(), tt.want)
		}
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Fuzz(func(t *testing.T, argv string) {
		// Real argv words cannot hold NUL, so NUL separates them.
		var args []string
		if argv != "" {
			args = strings.Split(argv, "\x00")
		}
		o, err := ParseArgs(args)
		if err != nil {
			var ue *UsageError
			var ae *AddressError
			if !errors.As(err, &ue) && !errors.As(err, &ae) {
				t.Fatalf("ParseArgs(%q): %v is neither a *UsageError nor an *AddressError", args, err)
			}
			return
		}
		for _, a := range append([]string{o.Sender}, o.Recipients...) {
			if strings.ContainsFunc(a, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("ParseArgs(%q): control character in address %q", args, a)
			}
		}
		if o.QueueInterval < 0 {
			t.Fatalf("ParseArgs(%q): negative interval %v", args, o.QueueInterval)
		}
		if o.ExtractRecipients && o.Mode != ModeDeliver {
			t.Fatalf("ParseArgs(%q): -t in mode %d", args, o.Mode)
		}
	})
}
