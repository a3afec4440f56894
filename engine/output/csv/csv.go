// Package csv is the CSV output (-o csv=FILE), with k6's columns: the
// metric name, timestamp and value, one column per system tag, the other
// tags in extra_tags and the sample metadata in metadata (both as
// k=v&k2=v2). A FILE ending in .gz is gzipped.
package csv

import (
	"bufio"
	"compress/gzip"
	stdcsv "encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output"
	"github.com/cdeload/cdeload/engine/output/flusher"
)

// Name is the output type on the command line.
const Name = "csv"

func init() {
	output.Register(Name, func(p output.Params) (output.Output, error) {
		cfg, err := ParseConfig(p.ConfigJSON, p.Env, p.Arg)
		if err != nil {
			return nil, err
		}
		return New(cfg, p.Logger), nil
	})
}

// TagColumns are the system tags that get a column of their own, in order.
var TagColumns = []string{
	"check", "error", "error_code", "expected_response", "group", "method", "name",
	"proto", "scenario", "service", "status", "subproto", "tls_version", "url",
}

// Header returns the header row.
func Header() []string {
	h := []string{"metric_name", "timestamp", "metric_value"}
	h = append(h, TagColumns...)
	return append(h, "extra_tags", "metadata")
}

var tagColumn = func() map[string]bool {
	m := map[string]bool{}
	for _, c := range TagColumns {
		m[c] = true
	}
	return m
}()

// Output writes samples as CSV rows.
type Output struct {
	cfg    Config
	logger *slog.Logger

	flusher *flusher.Flusher

	// Owned by the flusher's write calls.
	file     *os.File
	gz       *gzip.Writer
	bw       *bufio.Writer
	w        *stdcsv.Writer
	row      []string
	writeErr error

	started  bool
	stopOnce sync.Once
}

// New builds a CSV output. logger may be nil.
func New(cfg Config, logger *slog.Logger) *Output {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := &Output{
		cfg:    cfg,
		logger: logger.With("output", Name),
		row:    make([]string, len(Header())),
	}
	o.flusher = flusher.New(cfg.SaveInterval, o.write)
	return o
}

// Description names the output and its file.
func (o *Output) Description() string { return fmt.Sprintf("csv (%s)", o.cfg.FileName) }

// Start creates the file, writes the header and starts the writer.
func (o *Output) Start() error {
	if o.started {
		return errors.New("csv output: already started")
	}
	f, err := os.Create(o.cfg.FileName)
	if err != nil {
		return fmt.Errorf("csv output: creating %s: %w", o.cfg.FileName, err)
	}
	o.file = f
	var dst io.Writer = f
	if strings.HasSuffix(o.cfg.FileName, ".gz") {
		o.gz = gzip.NewWriter(f)
		dst = o.gz
	}
	o.bw = bufio.NewWriterSize(dst, 64<<10)
	o.w = stdcsv.NewWriter(o.bw)
	if err := o.w.Write(Header()); err != nil {
		_ = f.Close()
		return fmt.Errorf("csv output: writing the header to %s: %w", o.cfg.FileName, err)
	}
	o.started = true
	o.flusher.Start()
	return nil
}

// AddMetricSamples buffers samples; they are written every saveInterval.
func (o *Output) AddMetricSamples(batches []metrics.Samples) {
	o.flusher.Add(batches)
}

// Stop writes what is buffered and closes the file.
func (o *Output) Stop() error {
	var err error
	o.stopOnce.Do(func() {
		if !o.started {
			return
		}
		o.flusher.Stop()
		err = o.close()
	})
	return err
}

// write writes the rows of batch and flushes them to the file.
func (o *Output) write(batch []metrics.Samples) {
	for _, samples := range batch {
		for i := range samples {
			if samples[i].Metric == nil {
				continue
			}
			_ = o.w.Write(o.fillRow(&samples[i]))
		}
	}
	o.w.Flush()
	err := o.w.Error()
	if err == nil {
		err = o.bw.Flush()
	}
	if err != nil && o.writeErr == nil {
		o.writeErr = err
		o.logger.Error("csv output: writing failed", "file", o.cfg.FileName, "error", err)
	}
}

// fillRow fills the reusable row for s.
func (o *Output) fillRow(s *metrics.Sample) []string {
	row := o.row
	row[0] = s.Metric.Name
	row[1] = FormatTime(s.Time, o.cfg.TimeFormat)
	row[2] = strconv.FormatFloat(s.Value, 'f', 6, 64)
	for i, col := range TagColumns {
		row[3+i], _ = s.Tags.Get(col)
	}
	var extra strings.Builder
	s.Tags.Each(func(k, v string) {
		if tagColumn[k] {
			return
		}
		if extra.Len() > 0 {
			extra.WriteByte('&')
		}
		extra.WriteString(k)
		extra.WriteByte('=')
		extra.WriteString(v)
	})
	row[3+len(TagColumns)] = extra.String()
	row[4+len(TagColumns)] = formatMetadata(s.Metadata)
	return row
}

func formatMetadata(md map[string]string) string {
	if len(md) == 0 {
		return ""
	}
	keys := make([]string, 0, len(md))
	for k := range md {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(md[k])
	}
	return b.String()
}

// FormatTime formats a timestamp column value.
func FormatTime(t time.Time, f TimeFormat) string {
	switch f {
	case TimeUnixMilli:
		return strconv.FormatInt(t.UnixMilli(), 10)
	case TimeUnixMicro:
		return strconv.FormatInt(t.UnixMicro(), 10)
	case TimeUnixNano:
		return strconv.FormatInt(t.UnixNano(), 10)
	case TimeRFC3339:
		return t.Format(time.RFC3339)
	case TimeRFC3339Nano:
		return t.Format(time.RFC3339Nano)
	}
	return strconv.FormatInt(t.Unix(), 10)
}

func (o *Output) close() error {
	var errs []error
	if o.writeErr != nil {
		errs = append(errs, fmt.Errorf("csv output: writing %s: %w", o.cfg.FileName, o.writeErr))
	}
	if o.gz != nil {
		if err := o.gz.Close(); err != nil {
			errs = append(errs, fmt.Errorf("csv output: finishing gzip of %s: %w", o.cfg.FileName, err))
		}
	}
	if err := o.file.Close(); err != nil {
		errs = append(errs, fmt.Errorf("csv output: closing %s: %w", o.cfg.FileName, err))
	}
	return errors.Join(errs...)
}
