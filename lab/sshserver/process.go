package sshserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"
)

// exitNotFound is the shell's status for an unknown command.
const exitNotFound = 127

// maxSleep bounds the built-in sleep.
const maxSleep = time.Hour

// process runs one built-in command line.
type process struct {
	ctx    context.Context
	env    []string
	tty    *lineDiscipline
	rate   int // cat throttle in bytes per second; 0 = unlimited
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// runLine parses and runs cmdline, returning its exit status.
func (p *process) runLine(cmdline string) int {
	args, err := splitWords(cmdline)
	if err != nil {
		fmt.Fprintf(p.stderr, "sh: %v\n", err)
		return 2
	}
	return p.run(args, 0)
}

func (p *process) run(args []string, depth int) int {
	if len(args) == 0 {
		return 0
	}
	switch args[0] {
	case "sh", "bash", "/bin/sh", "/bin/bash":
		if len(args) >= 3 && args[1] == "-c" && depth < 4 {
			inner, err := splitWords(args[2])
			if err != nil {
				fmt.Fprintf(p.stderr, "%s: %v\n", args[0], err)
				return 2
			}
			return p.run(inner, depth+1)
		}
		if len(args) == 1 {
			return p.cat()
		}
		fmt.Fprintf(p.stderr, "%s: only \"-c COMMAND\" is supported\n", args[0])
		return 2
	case "cat":
		if len(args) > 1 {
			fmt.Fprintf(p.stderr, "cat: file arguments are not supported\n")
			return 1
		}
		return p.cat()
	case "echo":
		rest, newline := args[1:], true
		if len(rest) > 0 && rest[0] == "-n" {
			rest, newline = rest[1:], false
		}
		out := strings.Join(rest, " ")
		if newline {
			out += "\n"
		}
		if _, err := io.WriteString(p.stdout, out); err != nil {
			return 1
		}
		return 0
	case "true", ":":
		return 0
	case "false":
		return 1
	case "exit":
		if len(args) == 1 {
			return 0
		}
		n, err := strconv.Atoi(args[1])
		if err != nil {
			fmt.Fprintf(p.stderr, "exit: %s: numeric argument required\n", args[1])
			return 2
		}
		return n & 0xff
	case "sleep":
		if len(args) != 2 {
			fmt.Fprintf(p.stderr, "sleep: usage: sleep SECONDS\n")
			return 1
		}
		secs, err := strconv.ParseFloat(args[1], 64)
		if err != nil || secs < 0 || secs > maxSleep.Seconds() {
			fmt.Fprintf(p.stderr, "sleep: invalid time interval %q (0 to %v seconds)\n", args[1], maxSleep.Seconds())
			return 1
		}
		t := time.NewTimer(time.Duration(secs * float64(time.Second)))
		defer t.Stop()
		select {
		case <-t.C:
			return 0
		case <-p.ctx.Done():
			return 1
		}
	case "env", "printenv":
		env := append([]string(nil), p.env...)
		if args[0] == "printenv" && len(args) > 1 {
			code := 0
			for _, name := range args[1:] {
				v, ok := lookupEnv(env, name)
				if !ok {
					code = 1
					continue
				}
				fmt.Fprintln(p.stdout, v)
			}
			return code
		}
		if len(args) > 1 {
			fmt.Fprintf(p.stderr, "%s: arguments are not supported\n", args[0])
			return 1
		}
		sort.Strings(env)
		for _, kv := range env {
			fmt.Fprintln(p.stdout, kv)
		}
		return 0
	case "tty":
		if p.tty == nil {
			fmt.Fprintln(p.stdout, "not a tty")
			return 1
		}
		fmt.Fprintln(p.stdout, "/dev/pts/0")
		return 0
	case "stty":
		if len(args) == 2 && args[1] == "size" && p.tty != nil {
			p.tty.sizeMu.Lock()
			rows, cols := p.tty.rows, p.tty.cols
			p.tty.sizeMu.Unlock()
			fmt.Fprintf(p.stdout, "%d %d\n", rows, cols)
			return 0
		}
		fmt.Fprintln(p.stderr, "stty: only \"stty size\" on a tty is supported")
		return 1
	}
	fmt.Fprintf(p.stderr, "%s: command not found\n", args[0])
	return exitNotFound
}

func lookupEnv(env []string, name string) (string, bool) {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v, true
		}
	}
	return "", false
}

// Buffer sizes of cat: an echo session (small frames) keeps the small one;
// the first read that fills it switches to the large one for bulk data.
const (
	catSmallBuf = 2 << 10
	catLargeBuf = 32 << 10
)

// cat copies stdin to stdout until EOF, throttled to p.rate bytes/s if set.
func (p *process) cat() int {
	buf := make([]byte, catSmallBuf)
	if p.rate > 0 {
		buf = make([]byte, catLargeBuf)
		if p.rate < catLargeBuf {
			buf = buf[:max(p.rate/10, 1)] // keep throttled chunks near 100ms
		}
	}
	start := time.Now()
	var total int64
	for {
		n, err := p.stdin.Read(buf)
		if n == len(buf) && n < catLargeBuf && p.rate == 0 {
			buf = append(buf, make([]byte, catLargeBuf-n)...)
		}
		if n > 0 {
			if _, werr := p.stdout.Write(buf[:n]); werr != nil {
				return 1
			}
			total += int64(n)
			if p.rate > 0 {
				due := start.Add(time.Duration(float64(total) / float64(p.rate) * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					t := time.NewTimer(d)
					select {
					case <-t.C:
					case <-p.ctx.Done():
						t.Stop()
						return 1
					}
				}
			}
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return 0
			}
			return 1
		}
		if p.ctx.Err() != nil {
			return 1
		}
	}
}

// splitWords splits a command line into words like a POSIX shell does for
// simple commands: whitespace separates words; single quotes, double quotes
// and backslashes quote. Operators (| ; & < > $ `) are rejected.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unterminated single quote")
			}
			cur.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			i++
			for ; i < len(s) && s[i] != '"'; i++ {
				if s[i] == '\\' && i+1 < len(s) && strings.IndexByte("\"\\$`", s[i+1]) >= 0 {
					i++
				}
				cur.WriteByte(s[i])
			}
			if i >= len(s) {
				return nil, errors.New("unterminated double quote")
			}
			inWord = true
		case c == '\\':
			if i+1 < len(s) {
				i++
				cur.WriteByte(s[i])
			}
			inWord = true
		case strings.IndexByte("|;&<>$`()", c) >= 0:
			return nil, fmt.Errorf("unsupported shell syntax %q: only simple commands are supported", c)
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
