// Package webdashboard is the web-dashboard output (-o web-dashboard, or
// K6_WEB_DASHBOARD=true): a live page served over HTTP and updated with
// server-sent events, and a self-contained HTML report written at the end
// of the run. Both show the run (VUs, iterations), the workspaces' phases
// over time, the echo traffic, the thresholds and a per-workspace
// timeline, as server-rendered SVG and HTML: nothing is fetched at view
// time.
package webdashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output"
	"github.com/cdeload/cdeload/engine/output/flusher"
)

// Name is the output's type on the command line.
const Name = "web-dashboard"

func init() {
	output.Register(Name, func(p output.Params) (output.Output, error) {
		cfg, err := ParseConfig(p.Env, p.Arg)
		if err != nil {
			return nil, err
		}
		return New(cfg, p.Logger), nil
	})
}

// aggregateInterval is how often buffered samples are aggregated.
const aggregateInterval = 500 * time.Millisecond

// Output is the web dashboard. It implements output.Output and
// output.WithThresholds.
type Output struct {
	cfg Config
	log *slog.Logger

	flush *flusher.Flusher

	mu  sync.Mutex // guards agg
	agg *aggregator

	srv     *http.Server
	ln      net.Listener
	hub     *hub
	stop    chan struct{}
	stopped chan struct{}
}

// New returns the output for cfg; logger may be nil.
func New(cfg Config, logger *slog.Logger) *Output {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	o := &Output{cfg: cfg, log: logger, agg: newAggregator(time.Now()), hub: newHub(),
		stop: make(chan struct{}), stopped: make(chan struct{})}
	o.flush = flusher.New(aggregateInterval, func(batches []metrics.Samples) {
		o.mu.Lock()
		o.agg.add(batches)
		o.mu.Unlock()
	})
	return o
}

// Description implements output.Output.
func (o *Output) Description() string {
	var parts []string
	if o.cfg.Port >= 0 {
		parts = append(parts, "http://"+o.cfg.Addr())
	}
	if o.cfg.Export != "" {
		parts = append(parts, "report "+o.cfg.Export)
	}
	if len(parts) == 0 {
		return Name + " (no live page, no report)"
	}
	return Name + " " + strings.Join(parts, ", ")
}

// SetThresholds implements output.WithThresholds.
func (o *Output) SetThresholds(th map[string][]string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.agg.setThresholds(th)
}

// Start implements output.Output: it starts the live page (unless the port
// is -1) and the aggregation goroutine.
func (o *Output) Start() error {
	o.mu.Lock()
	o.agg.start = time.Now()
	o.mu.Unlock()
	if o.cfg.Port >= 0 {
		ln, err := net.Listen("tcp", o.cfg.Addr())
		if err != nil {
			return fmt.Errorf("web-dashboard output: listen on %s: %w (set K6_WEB_DASHBOARD_PORT to another port, or -1 for no live page)", o.cfg.Addr(), err)
		}
		o.ln = ln
		mux := http.NewServeMux()
		mux.HandleFunc("GET /{$}", o.servePage)
		mux.HandleFunc("GET /events", o.serveEvents)
		mux.HandleFunc("GET /report", o.serveReport)
		o.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := o.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				o.log.Error("web dashboard server", "error", err)
			}
		}()
		go o.broadcast()
		if o.cfg.Open {
			o.openBrowser("http://" + ln.Addr().String())
		}
	} else {
		close(o.stopped)
	}
	o.flush.Start()
	return nil
}

// URL is the live page's address once started ("" without a live page).
func (o *Output) URL() string {
	if o.ln == nil {
		return ""
	}
	return "http://" + o.ln.Addr().String() + "/"
}

// AddMetricSamples implements output.Output; it only buffers.
func (o *Output) AddMetricSamples(batches []metrics.Samples) { o.flush.Add(batches) }

// Stop implements output.Output: it aggregates what is left, sends the
// final state to open pages, writes the report and stops the server.
func (o *Output) Stop() error {
	o.flush.Stop()
	var errs []error
	final := o.body(true)
	if o.srv != nil {
		close(o.stop)
		<-o.stopped
		o.hub.publish(event{name: "done", data: final})
		o.hub.close()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := o.srv.Shutdown(ctx); err != nil {
			_ = o.srv.Close()
		}
	}
	if o.cfg.Export != "" {
		if err := o.writeReport(o.cfg.Export, final); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// body renders the dashboard's current state.
func (o *Output) body(finished bool) string {
	var b strings.Builder
	o.mu.Lock()
	o.agg.render(&b, pageState{now: time.Now(), finished: finished})
	o.mu.Unlock()
	return b.String()
}

// writeReport writes the self-contained report to path, through a
// temporary file so that a reader never sees half a report.
func (o *Output) writeReport(path, body string) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, ".report-*.html")
	if err != nil {
		return fmt.Errorf("web-dashboard output: write the report %s: %w", path, err)
	}
	werr := writePage(f, body, false)
	cerr := f.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("web-dashboard output: write the report %s: %w", path, err)
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("web-dashboard output: write the report %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("web-dashboard output: write the report %s: %w", path, err)
	}
	o.log.Info("web dashboard report written", "path", path)
	return nil
}

// broadcast renders and sends an update every period while a page is
// open (rendering costs nothing when nobody watches).
func (o *Output) broadcast() {
	defer close(o.stopped)
	t := time.NewTicker(o.cfg.Period)
	defer t.Stop()
	for {
		select {
		case <-o.stop:
			return
		case <-t.C:
			if o.hub.size() > 0 {
				o.hub.publish(event{name: "update", data: o.body(false)})
			}
		}
	}
}

func (o *Output) servePage(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = writePage(w, o.body(false), true)
}

func (o *Output) serveReport(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="report.html"`)
	_ = writePage(w, o.body(false), false)
}

func (o *Output) serveEvents(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	ch, leave := o.hub.join()
	defer leave()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	fmt.Fprintf(w, "retry: %d\n\n", o.cfg.Period.Milliseconds())
	fl.Flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case ev, ok := <-ch:
			if !ok {
				return
			}
			writeEvent(w, ev)
			fl.Flush()
			if ev.name == "done" {
				return
			}
		}
	}
}

// writeEvent writes one server-sent event; each line of data gets its own
// data: field.
func writeEvent(w http.ResponseWriter, ev event) {
	var b strings.Builder
	b.WriteString("event: " + ev.name + "\n")
	for _, l := range strings.Split(ev.data, "\n") {
		b.WriteString("data: " + l + "\n")
	}
	b.WriteString("\n")
	_, _ = w.Write([]byte(b.String()))
}

// openBrowser opens url in the desktop's browser, best effort.
func (o *Output) openBrowser(url string) {
	name := "xdg-open"
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name = "explorer"
	}
	cmd := exec.Command(name, url)
	if err := cmd.Start(); err != nil {
		o.log.Warn("web dashboard: cannot open a browser (K6_WEB_DASHBOARD_OPEN)", "command", name, "error", err)
		return
	}
	go func() { _ = cmd.Wait() }()
}

// event is one server-sent event.
type event struct{ name, data string }

// hub fans events out to the open pages. A page that is slow keeps only
// the latest update: publish never waits.
type hub struct {
	mu      sync.Mutex
	clients map[chan event]struct{}
	closed  bool
}

func newHub() *hub { return &hub{clients: map[chan event]struct{}{}} }

func (h *hub) size() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.clients)
}

// join adds a page; leave removes it.
func (h *hub) join() (ch chan event, leave func()) {
	ch = make(chan event, 1)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		close(ch)
		return ch, func() {}
	}
	h.clients[ch] = struct{}{}
	return ch, func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if _, ok := h.clients[ch]; ok {
			delete(h.clients, ch)
			close(ch)
		}
	}
}

func (h *hub) publish(ev event) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.clients {
		select {
		case <-ch: // drop the stale update
		default:
		}
		ch <- ev
	}
}

// close ends every page's stream after what was published.
func (h *hub) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for ch := range h.clients {
		delete(h.clients, ch)
		close(ch)
	}
}
