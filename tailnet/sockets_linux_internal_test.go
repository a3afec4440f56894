//go:build linux

package tailnet

import (
	"net"
	"syscall"
	"testing"
)

// kernelSockets finds exactly the process's sockets on the asked ports,
// with the descriptor that holds each, among many others.
func TestKernelSocketsFindsTheSocketsOnAPort(t *testing.T) {
	var others []net.PacketConn
	for range 50 {
		c, err := net.ListenPacket("udp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		others = append(others, c)
	}
	defer func() {
		for _, c := range others {
			c.Close()
		}
	}()
	udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	port := uint16(udp.LocalAddr().(*net.UDPAddr).Port)
	tcp, err := net.Listen("tcp4", net.JoinHostPort("127.0.0.1", "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	tcpPort := uint16(tcp.Addr().(*net.TCPAddr).Port)

	socks, err := kernelSockets(map[uint16]bool{port: true, tcpPort: true})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := udp.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var want syscall.Stat_t
	raw.Control(func(fd uintptr) { syscall.Fstat(int(fd), &want) })
	var gotUDP, gotTCP int
	for _, s := range socks {
		switch {
		case s.proto == "udp" && s.local.Port() == port:
			gotUDP++
			if s.inode != want.Ino || s.local.Addr().String() != "127.0.0.1" {
				t.Errorf("udp socket %+v, want inode %d on 127.0.0.1", s, want.Ino)
			}
			var st syscall.Stat_t
			if err := syscall.Fstat(s.fd, &st); err != nil || st.Ino != want.Ino {
				t.Errorf("fd %d is inode %d (%v), want %d", s.fd, st.Ino, err, want.Ino)
			}
		case s.proto == "tcp" && s.local.Port() == tcpPort:
			gotTCP++
		default:
			t.Errorf("unexpected socket %+v", s)
		}
	}
	if gotUDP != 1 || gotTCP != 1 {
		t.Fatalf("found %d UDP and %d TCP sockets on the ports, want 1 and 1: %+v", gotUDP, gotTCP, socks)
	}
}

func TestProcFields(t *testing.T) {
	line := []byte("  12: 0100007F:1F90 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 0")
	if f := string(procField(line, 1)); f != "0100007F:1F90" {
		t.Fatalf("field 1 = %q", f)
	}
	if f := string(procField(line, 9)); f != "4242" {
		t.Fatalf("field 9 = %q", f)
	}
	if f := procField(line, 40); len(f) != 0 {
		t.Fatalf("field 40 = %q, want empty", f)
	}
	if p, ok := procPort(procField(line, 1)); !ok || p != 8080 {
		t.Fatalf("port = %d, %v; want 8080", p, ok)
	}
	for _, bad := range []string{"", "0100007F", "0100007F:1F9", "0100007F:1G90"} {
		if _, ok := procPort([]byte(bad)); ok {
			t.Errorf("procPort(%q) ok, want not", bad)
		}
	}
	if n, ok := atoiBytes([]byte("123\x00\x00")); !ok || n != 123 {
		t.Fatalf("atoiBytes = %d, %v", n, ok)
	}
	for _, bad := range []string{".", "..", "\x00", "12a"} {
		if _, ok := atoiBytes([]byte(bad)); ok {
			t.Errorf("atoiBytes(%q) ok, want not", bad)
		}
	}
}
