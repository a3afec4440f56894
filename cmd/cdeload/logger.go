package main

import (
	"io"
	"log/slog"
	"strings"
)

// newLogger logs to w in logfmt with k6's lower-case level names.
func newLogger(w io.Writer, verbose bool) *slog.Logger {
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level,
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			if a.Key == slog.LevelKey && len(groups) == 0 {
				l := strings.ToLower(a.Value.String())
				if l == "warn" {
					l = "warning"
				}
				return slog.String(slog.LevelKey, l)
			}
			return a
		}}))
}
