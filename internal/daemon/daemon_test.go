package daemon

import (
	"io"
	"net"
	"os"
	"strconv"
	"testing"
)

func TestListenAndImplicitTLS(t *testing.T) {
	t.Setenv("LISTEN_PID", "")
	ls, err := Listen([]string{"127.0.0.1:0"}, []string{"127.0.0.1:0"}, "pop3s")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	if len(ls) != 2 || ls[0].TLS || !ls[1].TLS {
		t.Fatalf("Listen = %+v, want one plain and one TLS listener", ls)
	}
	port := ls[1].Addr().(*net.TCPAddr).Port
	tlsAddr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port}
	if !ImplicitTLS(tlsAddr, []string{"127.0.0.1:" + strconv.Itoa(port)}) || ImplicitTLS(tlsAddr, []string{"127.0.0.1:1"}) {
		t.Error("ImplicitTLS does not go by the port")
	}
	if _, err := Listen(nil, nil, "x"); err == nil {
		t.Error("Listen with no address succeeded")
	}
}

func TestStdioConnOverPipes(t *testing.T) {
	inR, inW, _ := os.Pipe()
	outR, outW, _ := os.Pipe()
	if IsSocket(inR) {
		t.Fatal("a pipe is taken for a socket")
	}
	c, err := StdioConn(inR, outW)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inW.Write([]byte("ping"))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("read %q, %v", buf, err)
	}
	c.Write([]byte("pong"))
	if _, err := io.ReadFull(outR, buf); err != nil || string(buf) != "pong" {
		t.Fatalf("wrote %q, %v", buf, err)
	}
}
