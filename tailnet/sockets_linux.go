//go:build linux

package tailnet

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// kernelSocket is one of the process's IP sockets, as /proc shows it.
type kernelSocket struct {
	fd    int
	inode uint64
	proto string // "tcp", "tcp6", "udp" or "udp6"
	local netip.AddrPort
}

// kernelSockets lists the process's IP sockets whose local port is in
// ports. Every node of a process runs it once at start, and the lab runs
// hundreds of nodes, each with its sockets in /proc: it reads /proc line by
// line and descriptor by descriptor without allocating for those that do
// not match, so that a lab's start is not quadratic in garbage.
func kernelSockets(ports map[uint16]bool) ([]kernelSocket, error) {
	byInode := map[uint64]kernelSocket{}
	for _, proto := range []string{"tcp", "tcp6", "udp", "udp6"} {
		if err := readProcNet(proto, ports, byInode); err != nil {
			return nil, err
		}
	}
	if len(byInode) == 0 {
		return nil, nil
	}
	var out []kernelSocket
	err := eachFD(func(fd int) {
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
			return // closed meanwhile, or not a socket
		}
		if s, ok := byInode[st.Ino]; ok {
			s.fd = fd
			out = append(out, s)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list file descriptors: %w", err)
	}
	return out, nil
}

// eachFD calls fn with every open file descriptor of the process (as
// /proc/self/fd lists them; the directory's own descriptor included).
func eachFD(fn func(fd int)) error {
	dir, err := unix.Open("/proc/self/fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dir)
	buf := make([]byte, 16<<10)
	for {
		n, err := unix.Getdents(dir, buf)
		if err != nil {
			return err
		}
		if n <= 0 {
			return nil
		}
		// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
		for b := buf[:n]; len(b) >= 19; {
			reclen := int(b[16]) | int(b[17])<<8
			if reclen < 19 || reclen > len(b) {
				return fmt.Errorf("bad directory entry length %d", reclen)
			}
			if fd, ok := atoiBytes(b[19:reclen]); ok {
				fn(fd)
			}
			b = b[reclen:]
		}
	}
}

// atoiBytes parses the decimal number at the start of b, up to a NUL
// byte; "." and ".." are not numbers.
func atoiBytes(b []byte) (int, bool) {
	v, digits := 0, 0
	for _, c := range b {
		if c == 0 {
			break
		}
		if c < '0' || c > '9' || digits > 9 {
			return 0, false
		}
		v = v*10 + int(c-'0')
		digits++
	}
	return v, digits > 0
}

// procField returns the i-th whitespace-separated field of line.
func procField(line []byte, i int) []byte {
	for {
		for len(line) > 0 && (line[0] == ' ' || line[0] == '\t') {
			line = line[1:]
		}
		end := 0
		for end < len(line) && line[end] != ' ' && line[end] != '\t' {
			end++
		}
		if i == 0 || end == 0 {
			return line[:end]
		}
		line, i = line[end:], i-1
	}
}

// procPort returns the port of a /proc/net "ADDR:PORT" field (hex).
func procPort(f []byte) (uint16, bool) {
	colon := bytes.LastIndexByte(f, ':')
	if colon < 0 || len(f)-colon-1 != 4 {
		return 0, false
	}
	var port uint16
	for _, c := range f[colon+1:] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		default:
			return 0, false
		}
		port = port<<4 | uint16(c)
	}
	return port, true
}

// readProcNet adds the sockets of /proc/self/net/<proto> on ports to
// byInode.
func readProcNet(proto string, ports map[uint16]bool, byInode map[uint64]kernelSocket) error {
	f, err := os.Open("/proc/self/net/" + proto)
	if err != nil {
		if os.IsNotExist(err) { // no IPv6
			return nil
		}
		return fmt.Errorf("read sockets: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		line := sc.Bytes()
		if port, ok := procPort(procField(line, 1)); !ok || !ports[port] {
			continue
		}
		local, err := parseProcAddr(string(procField(line, 1)))
		if err != nil {
			continue
		}
		inode, err := strconv.ParseUint(string(procField(line, 9)), 10, 64)
		if err != nil {
			continue
		}
		byInode[inode] = kernelSocket{proto: proto, local: local, inode: inode}
	}
	return sc.Err()
}

// parseProcAddr parses /proc/net's "ADDR:PORT" (the address in 32-bit
// words of host byte order, the port in hex).
func parseProcAddr(s string) (netip.AddrPort, error) {
	a, p, ok := strings.Cut(s, ":")
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	raw, err := hex.DecodeString(a)
	if err != nil || (len(raw) != 4 && len(raw) != 16) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	for i := 0; i < len(raw); i += 4 { // each word is little-endian here
		raw[i], raw[i+1], raw[i+2], raw[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
	}
	port, err := strconv.ParseUint(p, 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("bad port in %q", s)
	}
	addr, _ := netip.AddrFromSlice(raw)
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// use calls fn with a duplicate of s's descriptor, if that still is the
// same socket: the process may have closed s.fd and reused the number
// since it was listed, and fn must never touch another socket.
func (s kernelSocket) use(fn func(fd int) error) error {
	dup, err := unix.Dup(s.fd)
	if err != nil {
		return nil // closed meanwhile
	}
	defer unix.Close(dup)
	var st unix.Stat_t
	if err := unix.Fstat(dup, &st); err != nil || st.Ino != s.inode {
		return nil // another file now
	}
	return fn(dup)
}

// skfNetOff is the classic BPF offset of the network header (SKF_NET_OFF).
const skfNetOff = 0xfff00000 // -0x100000 as uint32

// loopbackOnlyFilter is a socket filter that keeps the packets whose
// source address is a loopback address (127.0.0.0/8 or ::1) and drops the
// rest.
func loopbackOnlyFilter(v6 bool) ([]bpf.RawInstruction, error) {
	var prog []bpf.Instruction
	if v6 {
		// The source address is at offset 8 of the IPv6 header.
		prog = []bpf.Instruction{
			bpf.LoadAbsolute{Off: skfNetOff + 8, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 6},
			bpf.LoadAbsolute{Off: skfNetOff + 12, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 4},
			bpf.LoadAbsolute{Off: skfNetOff + 16, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: 0, SkipTrue: 2},
			bpf.LoadAbsolute{Off: skfNetOff + 20, Size: 4},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 1, SkipFalse: 1},
			bpf.RetConstant{Val: 0xffffffff},
			bpf.RetConstant{Val: 0},
		}
	} else {
		// The source address is at offset 12 of the IPv4 header.
		prog = []bpf.Instruction{
			bpf.LoadAbsolute{Off: skfNetOff + 12, Size: 4},
			bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: 0xff000000},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x7f000000, SkipFalse: 1},
			bpf.RetConstant{Val: 0xffffffff},
			bpf.RetConstant{Val: 0},
		}
	}
	return bpf.Assemble(prog)
}

// acceptLoopbackOnly attaches loopbackOnlyFilter to socket fd.
func acceptLoopbackOnly(fd int, v6 bool) error {
	raw, err := loopbackOnlyFilter(v6)
	if err != nil {
		return err
	}
	filter := make([]unix.SockFilter, len(raw))
	for i, r := range raw {
		filter[i] = unix.SockFilter{Code: r.Op, Jt: r.Jt, Jf: r.Jf, K: r.K}
	}
	prog := unix.SockFprog{Len: uint16(len(filter)), Filter: &filter[0]}
	return unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &prog)
}

// socketFilterLen returns the number of instructions of the filter attached
// to socket fd (0 for none).
func socketFilterLen(fd int) (int, error) {
	var n uint32 // in: buffer length 0, out: the filter's length
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_SOCKET, unix.SO_GET_FILTER, 0, uintptr(unsafe.Pointer(&n)), 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// restrictSockets keeps the node's kernel sockets from taking packets from
// outside the machine. tsnet binds them to the wildcard address and offers
// no way to choose one, so:
//
//   - the peer API's kernel listener is shut down: in tsnet, tailnet peers
//     reach the peer API through the node's own TCP stack, which serves it
//     without that listener, so only outside hosts could connect to it;
//   - the WireGuard/disco UDP sockets get a socket filter that drops packets
//     from non-loopback sources, when the control server is on loopback (a
//     lab: every peer, DERP and STUN server is on loopback).
//
// A socket magicsock opens later (a rebind after a network change) is not
// covered.
func (n *Node) restrictSockets(peerAPIPorts []uint16) error {
	udp, tcp := map[uint16]bool{}, map[uint16]bool{}
	for _, p := range peerAPIPorts {
		tcp[p] = true
	}
	if loopbackURL(n.cfg.ControlURL) {
		if ms, ok := n.srv.Sys().MagicSock.GetOK(); ok {
			if p := ms.LocalPort(); p != 0 {
				udp[p] = true
			}
		}
	}
	ports := map[uint16]bool{}
	for p := range udp {
		ports[p] = true
	}
	for p := range tcp {
		ports[p] = true
	}
	if len(ports) == 0 {
		return nil
	}
	socks, err := kernelSockets(ports)
	if err != nil {
		return err
	}
	for _, s := range socks {
		if !s.local.Addr().IsUnspecified() {
			continue
		}
		switch {
		case strings.HasPrefix(s.proto, "tcp") && tcp[s.local.Port()]:
			// Accept then fails, and the peer API's accept loop closes the
			// listener.
			if err := s.use(func(fd int) error { return unix.Shutdown(fd, unix.SHUT_RDWR) }); err != nil {
				return fmt.Errorf("shut the peer API's %s listener %v down: %w", s.proto, s.local, err)
			}
		case strings.HasPrefix(s.proto, "udp") && udp[s.local.Port()]:
			if err := s.use(func(fd int) error { return acceptLoopbackOnly(fd, strings.HasSuffix(s.proto, "6")) }); err != nil {
				return fmt.Errorf("filter %s socket %v: %w", s.proto, s.local, err)
			}
		}
	}
	return nil
}
