# yubin: `make` builds bin/, `make test` runs every test, `make demo` runs a
# self-contained instance under ./run/. See README.md.

PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   ?= $(PREFIX)/bin
SBINDIR  ?= $(PREFIX)/sbin
MANDIR   ?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
QUEUEDIR ?= /var/spool/yubin
# The owner of the queue and the group of the setgid sendmail and mailq.
MAIL_OWNER ?= mail
# `make install SYSTEM_MTA=1` also links /usr/sbin/sendmail, /usr/bin/mailq,
# /usr/bin/newaliases and /usr/lib/sendmail to yubin's, as distributions do.
SYSTEM_MTA ?=

GO       ?= go
BIN      ?= bin
PROGRAMS := $(patsubst cmd/%/main.go,%,$(wildcard cmd/*/main.go))
FUZZTIME ?= 60s

.PHONY: all build test vet deps demo demo-stop install uninstall fuzz soak bench clean

all: build

# Every program starts per message or per session: leave out urfave/cli's
# man page generator and suggestions (1 ms of start-up each run).
TAGS     := urfave_cli_no_docs,urfave_cli_no_suggest

build:
	$(GO) build -tags $(TAGS) -o $(BIN)/ ./cmd/...
	@# sendmail starts once per message: built static it skips the dynamic
	@# loader, 10-15% of its run (bench/README.md).
	CGO_ENABLED=0 $(GO) build -tags $(TAGS) -o $(BIN)/ ./cmd/sendmail

# deps installs what the tests need (Go modules; Debian packages when root).
deps:
	$(GO) mod download
	scripts/test-deps

vet:
	$(GO) vet ./...
	@unformatted=$$(gofmt -l cmd internal test bench); \
	  if [ -n "$$unformatted" ]; then echo "not gofmt'ed: $$unformatted"; exit 1; fi

test: deps build vet
	$(GO) test -count=1 -timeout 20m ./...

# The long runs: every fuzz target for FUZZTIME, and the soak tests.
fuzz:
	scripts/fuzz $(FUZZTIME)

soak: build
	YUBIN_SOAK=1 $(GO) test -count=1 -timeout 60m -run Soak ./test/

bench: build
	$(GO) run ./bench/enqueue
	$(GO) run ./bench/deliver
	$(GO) run ./bench/relay
	$(GO) run ./bench/pop3
	$(GO) run ./bench/smtp
	$(GO) run ./bench/smtp -e2e
	$(GO) run ./bench/imap

demo: build
	scripts/demo

demo-stop:
	scripts/demo stop

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 $(DESTDIR)$(SYSCONFDIR)/yubin
	for p in $(PROGRAMS); do \
	  case $$p in mailq) dir=$(BINDIR) ;; *) dir=$(SBINDIR) ;; esac; \
	  install -m 0755 bin/$$p $(DESTDIR)$$dir/$$p; \
	done
	# setgid mail_owner's group: unprivileged users may write the queue
	# (sendmail) and read envelopes (mailq); see sendmail(8), SECURITY.
	chgrp $(MAIL_OWNER) $(DESTDIR)$(SBINDIR)/sendmail $(DESTDIR)$(BINDIR)/mailq && \
	  chmod 2755 $(DESTDIR)$(SBINDIR)/sendmail $(DESTDIR)$(BINDIR)/mailq || \
	  echo "warning: group $(MAIL_OWNER) missing: sendmail and mailq not setgid"
	for m in man/*.[1-8]; do \
	  install -m 0644 $$m $(DESTDIR)$(MANDIR)/man$${m##*.}/; \
	done
	test -e $(DESTDIR)$(SYSCONFDIR)/yubin/yubin.conf || \
	  install -m 0644 etc/yubin.conf $(DESTDIR)$(SYSCONFDIR)/yubin/yubin.conf
	test -e $(DESTDIR)$(SYSCONFDIR)/aliases || \
	  install -m 0644 etc/aliases $(DESTDIR)$(SYSCONFDIR)/aliases
	# The queue (internal/queue's package comment): owned by mail_owner,
	# setgid so that every file gets its group.
	for d in "" /tmp /msg /state; do \
	  install -d -m 2770 $(DESTDIR)$(QUEUEDIR)$$d; \
	  chown $(MAIL_OWNER):$(MAIL_OWNER) $(DESTDIR)$(QUEUEDIR)$$d || true; \
	done
	if [ -n "$(SYSTEM_MTA)" ]; then \
	  link() { [ "$$1" = "$$2" ] || ln -sf "$$1" "$(DESTDIR)$$2"; }; \
	  install -d $(DESTDIR)/usr/sbin $(DESTDIR)/usr/bin $(DESTDIR)/usr/lib; \
	  link $(SBINDIR)/sendmail /usr/sbin/sendmail; \
	  link $(SBINDIR)/sendmail /usr/lib/sendmail; \
	  link $(BINDIR)/mailq /usr/bin/mailq; \
	  link $(SBINDIR)/newaliases /usr/bin/newaliases; \
	fi

uninstall:
	for p in $(PROGRAMS); do rm -f $(DESTDIR)$(SBINDIR)/$$p $(DESTDIR)$(BINDIR)/$$p; done
	for m in man/*.[1-8]; do rm -f $(DESTDIR)$(MANDIR)/man$${m##*.}/$${m##*/}; done

clean:
	rm -rf bin run
