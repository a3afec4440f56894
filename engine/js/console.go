package js

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grafana/sobek"
)

// logWriter writes k6-style logfmt lines, one Write per line, safe for
// concurrent use:
//
//	time="2026-08-21T12:00:00Z" level=info msg="hello" source=console
type logWriter struct {
	mu    sync.Mutex
	w     io.Writer
	debug bool
	now   func() time.Time
}

func (l *logWriter) log(level, msg string, fields ...string) {
	if level == "debug" && !l.debug {
		return
	}
	var b strings.Builder
	b.WriteString(`time="`)
	b.WriteString(l.now().Format(time.RFC3339))
	b.WriteString(`" level=`)
	b.WriteString(level)
	b.WriteString(" msg=")
	b.WriteString(strconv.Quote(msg))
	for i := 0; i+1 < len(fields); i += 2 {
		b.WriteByte(' ')
		b.WriteString(fields[i])
		b.WriteByte('=')
		b.WriteString(logfmtValue(fields[i+1]))
	}
	b.WriteByte('\n')
	l.mu.Lock()
	_, _ = io.WriteString(l.w, b.String())
	l.mu.Unlock()
}

func logfmtValue(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-._/@^+:", r)) {
			return strconv.Quote(s)
		}
	}
	return s
}

// logfmtHandler is a slog.Handler over a logWriter; it is the default
// Logger given to modules.
type logfmtHandler struct {
	w     *logWriter
	attrs []slog.Attr
}

func (h *logfmtHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= slog.LevelInfo || h.w.debug
}

func (h *logfmtHandler) Handle(_ context.Context, r slog.Record) error {
	fields := make([]string, 0, 2*(len(h.attrs)+r.NumAttrs()))
	add := func(a slog.Attr) bool {
		fields = append(fields, a.Key, a.Value.String())
		return true
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(add)
	level := "info"
	switch {
	case r.Level >= slog.LevelError:
		level = "error"
	case r.Level >= slog.LevelWarn:
		level = "warning"
	case r.Level < slog.LevelInfo:
		level = "debug"
	}
	h.w.log(level, r.Message, fields...)
	return nil
}

func (h *logfmtHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &logfmtHandler{w: h.w, attrs: append(append([]slog.Attr(nil), h.attrs...), as...)}
}

func (h *logfmtHandler) WithGroup(string) slog.Handler { return h }

// newConsole makes the console object of a VU.
func newConsole(v *vu) *sobek.Object {
	o := v.rt.NewObject()
	mk := func(level string) func(sobek.FunctionCall) sobek.Value {
		return func(call sobek.FunctionCall) sobek.Value {
			v.script.logw.log(level, formatArgs(v.rt, call.Arguments), "source", "console")
			return sobek.Undefined()
		}
	}
	must(o.Set("log", mk("info")))
	must(o.Set("info", mk("info")))
	must(o.Set("debug", mk("debug")))
	must(o.Set("warn", mk("warning")))
	must(o.Set("error", mk("error")))
	return o
}

// formatArgs renders console arguments the way k6 does: strings as they
// are, objects as JSON, errors with their message, joined by spaces.
func formatArgs(rt *sobek.Runtime, args []sobek.Value) string {
	parts := make([]string, len(args))
	for i, a := range args {
		parts[i] = formatValue(rt, a)
	}
	return strings.Join(parts, " ")
}

func formatValue(rt *sobek.Runtime, a sobek.Value) string {
	obj, ok := a.(*sobek.Object)
	if !ok {
		return a.String()
	}
	if _, isFn := sobek.AssertFunction(a); isFn {
		return a.String()
	}
	if st := obj.Get("stack"); st != nil && !sobek.IsUndefined(st) {
		return a.String() // an Error: "Error: message"
	}
	stringify, _ := sobek.AssertFunction(rt.Get("JSON").ToObject(rt).Get("stringify"))
	s, err := stringify(sobek.Undefined(), a)
	if err != nil || s == nil || sobek.IsUndefined(s) {
		return a.String()
	}
	return s.String()
}
