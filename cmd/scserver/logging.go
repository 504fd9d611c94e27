package main

import (
	"io"
	"log/slog"
)

// newLogger returns the binary's logger: text lines on w from level up.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
