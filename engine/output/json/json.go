// Package json is the JSON lines output (-o json=FILE): k6's format, one
// "Metric" line the first time a metric is seen and one "Point" line per
// sample. A FILE ending in .gz is gzipped; "-" or nothing writes to stdout.
package json

import (
	"bufio"
	"bytes"
	"compress/gzip"
	stdjson "encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output"
	"github.com/cdeload/cdeload/engine/output/flusher"
)

// Name is the output type on the command line.
const Name = "json"

// FlushInterval is how often buffered samples are written.
const FlushInterval = time.Second

func init() {
	output.Register(Name, func(p output.Params) (output.Output, error) { return New(p) })
}

// Output writes samples as JSON lines.
type Output struct {
	fileName string
	stdout   io.Writer
	logger   *slog.Logger

	flusher *flusher.Flusher

	// Owned by the flusher's write calls.
	file       *os.File
	gz         *gzip.Writer
	w          *bufio.Writer
	seen       map[*metrics.Metric]bool
	thresholds map[string][]string
	submetrics map[string][]submetric
	line       []byte
	skipped    uint64
	writeErr   error

	started  bool
	stopOnce sync.Once
}

var _ output.WithThresholds = (*Output)(nil)

// New builds a JSON output from the -o argument (the file name).
func New(p output.Params) (*Output, error) {
	if cfg := bytes.TrimSpace(p.ConfigJSON); len(cfg) > 0 && string(cfg) != "{}" && string(cfg) != "null" {
		return nil, fmt.Errorf("json output: the config file section %s is not supported: the json output takes only a file name, -o json=FILE", cfg)
	}
	logger := p.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	stdout := p.Stdout
	if stdout == nil {
		stdout = os.Stdout
	}
	o := &Output{
		fileName:   p.Arg,
		stdout:     stdout,
		logger:     logger.With("output", Name),
		seen:       map[*metrics.Metric]bool{},
		thresholds: map[string][]string{},
		submetrics: map[string][]submetric{},
	}
	o.flusher = flusher.New(FlushInterval, o.write)
	return o, nil
}

// Description names the output and its file.
func (o *Output) Description() string {
	if o.toStdout() {
		return "json(stdout)" // k6 writes it without a space
	}
	return fmt.Sprintf("json (%s)", o.fileName)
}

func (o *Output) toStdout() bool { return o.fileName == "" || o.fileName == "-" }

// submetric is a submetric as the Metric line lists it.
type submetric struct {
	Name   string            `json:"name"`
	Suffix string            `json:"suffix"`
	Tags   map[string]string `json:"tags"`
}

// SetThresholds records the thresholds written in the Metric lines. Keys
// that are not valid metric keys are ignored (the engine reports them).
func (o *Output) SetThresholds(th map[string][]string) {
	for key, srcs := range th {
		name, filter, err := metrics.ParseMetricKey(key)
		if err != nil {
			continue
		}
		if filter == nil {
			o.thresholds[name] = append(o.thresholds[name], srcs...)
			continue
		}
		suffix := strings.TrimSuffix(key[strings.IndexByte(key, '{')+1:], "}")
		o.submetrics[name] = append(o.submetrics[name], submetric{Name: key, Suffix: suffix, Tags: filter.Map()})
	}
	for _, subs := range o.submetrics {
		sort.Slice(subs, func(i, j int) bool { return subs[i].Name < subs[j].Name })
	}
}

// Start opens the file and starts the flushing goroutine.
func (o *Output) Start() error {
	if o.started {
		return errors.New("json output: already started")
	}
	var dst io.Writer = o.stdout
	if !o.toStdout() {
		f, err := os.Create(o.fileName)
		if err != nil {
			return fmt.Errorf("json output: creating %s: %w", o.fileName, err)
		}
		o.file = f
		dst = f
		if strings.HasSuffix(o.fileName, ".gz") {
			o.gz = gzip.NewWriter(f)
			dst = o.gz
		}
	}
	o.w = bufio.NewWriterSize(dst, 64<<10)
	o.started = true
	o.flusher.Start()
	return nil
}

// AddMetricSamples buffers samples; they are written within a second.
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

// write writes the lines of batch and flushes them to the file.
func (o *Output) write(batch []metrics.Samples) {
	for _, samples := range batch {
		for i := range samples {
			o.writeSample(&samples[i])
		}
	}
	if err := o.w.Flush(); err != nil && o.writeErr == nil {
		o.writeErr = err
		o.logger.Error("json output: writing failed", "file", o.fileName, "error", err)
	}
}

func (o *Output) close() error {
	var errs []error
	if o.skipped > 0 {
		o.logger.Warn("json output: samples with non-finite values were not written", "count", o.skipped)
	}
	if o.writeErr != nil {
		errs = append(errs, fmt.Errorf("json output: writing %s: %w", o.fileName, o.writeErr))
	}
	if o.gz != nil {
		if err := o.gz.Close(); err != nil {
			errs = append(errs, fmt.Errorf("json output: finishing gzip of %s: %w", o.fileName, err))
		}
	}
	if o.file != nil {
		if err := o.file.Close(); err != nil {
			errs = append(errs, fmt.Errorf("json output: closing %s: %w", o.fileName, err))
		}
	}
	return errors.Join(errs...)
}

// metricLine is the "Metric" envelope.
type metricLine struct {
	Type string `json:"type"`
	Data struct {
		Name       string      `json:"name"`
		Type       string      `json:"type"`
		Contains   string      `json:"contains"`
		Thresholds []string    `json:"thresholds"`
		Submetrics []submetric `json:"submetrics"`
	} `json:"data"`
	Metric string `json:"metric"`
}

func (o *Output) writeSample(s *metrics.Sample) {
	m := s.Metric
	if m == nil {
		return
	}
	if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
		o.skipped++
		return
	}
	if !o.seen[m] {
		o.seen[m] = true
		var ml metricLine
		ml.Type = "Metric"
		ml.Metric = m.Name
		ml.Data.Name = m.Name
		ml.Data.Type = m.Type.String()
		ml.Data.Contains = m.Contains.String()
		ml.Data.Thresholds = append([]string{}, o.thresholds[m.Name]...)
		ml.Data.Submetrics = o.submetrics[m.Name]
		b, err := stdjson.Marshal(ml)
		if err == nil {
			_, _ = o.w.Write(append(b, '\n'))
		}
	}
	o.line = AppendPoint(o.line[:0], s)
	_, _ = o.w.Write(o.line)
}

// AppendPoint appends the "Point" line of s, with its newline, to b.
func AppendPoint(b []byte, s *metrics.Sample) []byte {
	b = append(b, `{"type":"Point","data":{"time":`...)
	b = append(b, '"')
	b = s.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","value":`...)
	b = appendFloat(b, s.Value)
	b = append(b, `,"tags":{`...)
	first := true
	s.Tags.Each(func(k, v string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendString(b, k)
		b = append(b, ':')
		b = appendString(b, v)
	})
	b = append(b, '}')
	if len(s.Metadata) > 0 {
		b = append(b, `,"metadata":{`...)
		keys := make([]string, 0, len(s.Metadata))
		for k := range s.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, s.Metadata[k])
		}
		b = append(b, '}')
	}
	b = append(b, `},"metric":`...)
	b = appendString(b, s.Metric.Name)
	b = append(b, "}\n"...)
	return b
}

// appendFloat formats like encoding/json: plain decimals, exponent form
// for very small or large magnitudes.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// e-09 → e-9
		n := len(b) - start
		if n >= 4 && b[len(b)-4] == 'e' && b[len(b)-3] == '-' && b[len(b)-2] == '0' {
			b[len(b)-2] = b[len(b)-1]
			b = b[:len(b)-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
