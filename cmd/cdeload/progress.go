package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/cdeload/cdeload/engine/options"
	"github.com/cdeload/cdeload/engine/run"
)

// progress shows k6-style progress lines while the test runs: redrawn in
// place on a terminal (stderr), or, when stderr is not a terminal, printed
// as plain blocks every second on stdout as k6 does, so that a CI log shows
// the run is alive. Its final frame is drawn once, before the summary.
type progress struct {
	w     io.Writer
	mode  progressMode
	mu    sync.Mutex
	exec  *run.Execution
	lines int
	done  chan struct{}
	wg    sync.WaitGroup
	once  sync.Once
}

// progressMode is how progress is shown.
type progressMode int

const (
	progressOff   progressMode = iota // --quiet
	progressLive                      // a terminal: redrawn in place
	progressPlain                     // not a terminal: one block per interval
)

// Redraw intervals: a terminal is redrawn often, a log gets a block a
// second (k6's cadence for each).
const (
	liveInterval  = 200 * time.Millisecond
	plainInterval = time.Second
)

// newProgress picks where and how progress goes: nowhere with quiet, live
// on stderr when it is a terminal, plain blocks on stdout otherwise.
func newProgress(s *stdio, quiet bool) *progress {
	switch {
	case quiet:
		return &progress{w: io.Discard, mode: progressOff, done: make(chan struct{})}
	case isTerminal(s.errOut):
		return &progress{w: s.errOut, mode: progressLive, done: make(chan struct{})}
	default:
		return &progress{w: s.out, mode: progressPlain, done: make(chan struct{})}
	}
}

// attach is the run's OnExecution hook.
func (p *progress) attach(e *run.Execution) {
	p.mu.Lock()
	p.exec = e
	p.mu.Unlock()
	if p.mode == progressOff {
		return
	}
	interval := liveInterval
	if p.mode == progressPlain {
		interval = plainInterval
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-p.done:
				return
			case <-t.C:
				p.draw()
			}
		}
	}()
}

// stop ends the periodic drawing and draws the final frame; only the first
// call does anything, so it can run before the summary and again on paths
// where there is none.
func (p *progress) stop() {
	p.once.Do(func() {
		close(p.done)
		p.wg.Wait()
		if p.mode != progressOff {
			p.draw()
			fmt.Fprintln(p.w)
		}
	})
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exec == nil {
		return
	}
	var b strings.Builder
	live := p.mode == progressLive
	if live && p.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.lines)
	}
	c := p.exec.Counters()
	maxVUs := max(p.exec.Plan().MaxPossibleVUs, c.InitializedVUs)
	lines := []string{fmt.Sprintf("running (%s), %02d/%02d VUs, %d complete and %d interrupted iterations",
		clock(c.Elapsed), c.ActiveVUs, maxVUs, c.Complete, c.Interrupted)}
	sc := p.exec.Scenarios()
	width := 0
	for _, s := range sc {
		width = max(width, len(s.Name))
	}
	for _, s := range sc {
		mark := " "
		if s.Fraction >= 1 {
			mark = "✓"
		}
		lines = append(lines, fmt.Sprintf("%-*s %s [%s] %s", width, s.Name, mark, bar(s.Fraction, 40), s.Status))
	}
	for _, l := range lines {
		if live {
			b.WriteString("\x1b[2K")
		}
		b.WriteString(l)
		b.WriteByte('\n')
	}
	p.lines = len(lines)
	io.WriteString(p.w, b.String())
}

func bar(f float64, width int) string {
	f = min(max(f, 0), 1)
	n := int(f * float64(width))
	return fmt.Sprintf("%s%s %3.0f%%", strings.Repeat("=", n), strings.Repeat("-", width-n), f*100)
}

// clock formats d as k6 does in progress lines: 0m05.2s, 1h02m03.0s.
func clock(d time.Duration) string {
	h := int(d / time.Hour)
	m := int(d % time.Hour / time.Minute)
	s := float64(d%time.Minute) / float64(time.Second)
	if h > 0 {
		return fmt.Sprintf("%dh%02dm%04.1fs", h, m, s)
	}
	return fmt.Sprintf("%dm%04.1fs", m, s)
}

func parseSegment(s string) (string, error) {
	seg, err := options.ParseSegment(s)
	if err != nil {
		return "", err
	}
	from, _ := seg.From.Float64()
	to, _ := seg.To.Float64()
	return fmt.Sprintf("%.2f%%", (to-from)*100), nil
}
