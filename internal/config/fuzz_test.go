package config

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that it fails only with an
// *Error, and that what it accepts holds together.
func FuzzParse(f *testing.F) {
	f.Add("")
	f.Add("hostname = mail.example.org\nlocal_domains = $hostname,\n  example.org\n")
	f.Add("aliases = ${queue_dir}/a$$b\nqueue_dir = $aliases\n")
	f.Add("relay_networks = 10.0.0.0/8 [::1]/128\ndns_servers = ::1 127.0.0.1:5353\nmessage_size_limit = 10m\n")
	f.Fuzz(func(t *testing.T, conf string) {
		c, err := Parse("fuzz.conf", strings.NewReader(conf))
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || ce.File != "fuzz.conf" {
				t.Fatalf("error %T %q is not a *Error of fuzz.conf", err, err)
			}
			return
		}
		if (c.TLSCert == "") != (c.TLSKey == "") {
			t.Errorf("tls_cert %q without tls_key %q", c.TLSCert, c.TLSKey)
		}
		for _, d := range c.LocalDomains {
			if d != strings.ToLower(d) || !c.IsLocalDomain(d) {
				t.Errorf("local domain %q", d)
			}
		}
		for _, p := range c.RelayNetworks {
			if !p.IsValid() || p != p.Masked() {
				t.Errorf("relay network %v", p)
			}
		}
		for _, s := range c.DNSServers {
			if ap, err := netip.ParseAddrPort(s); err != nil || ap.Port() == 0 {
				t.Errorf("dns server %q", s)
			}
		}
		if c.RemoteSMTPPort < 1 || c.RemoteSMTPPort > 65535 || c.MessageSizeLimit < 0 {
			t.Errorf("port %d, size %d", c.RemoteSMTPPort, c.MessageSizeLimit)
		}
	})
}
