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

// progress draws k6-style progress lines on a terminal while the test
// runs, and prints the final state once at the end.
type progress struct {
	w     io.Writer
	live  bool
	mu    sync.Mutex
	exec  *run.Execution
	lines int
	done  chan struct{}
	wg    sync.WaitGroup
}

func newProgress(w io.Writer, live bool) *progress {
	return &progress{w: w, live: live, done: make(chan struct{})}
}

// attach is the run's OnExecution hook.
func (p *progress) attach(e *run.Execution) {
	p.mu.Lock()
	p.exec = e
	p.mu.Unlock()
	if !p.live {
		return
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(200 * time.Millisecond)
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

// stop ends the live lines and, when final, prints the last state.
func (p *progress) stop(final bool) {
	close(p.done)
	p.wg.Wait()
	if final {
		p.draw()
		fmt.Fprintln(p.w)
	}
}

func (p *progress) draw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.exec == nil {
		return
	}
	var b strings.Builder
	if p.live && p.lines > 0 {
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
		if p.live {
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
