package run

import (
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/output"
)

// pump moves samples from the VUs' channel to every output, in batches.
type pump struct {
	in       chan metrics.Samples
	outputs  []output.Output
	interval time.Duration
	stop     chan struct{}
	done     chan struct{}
}

func newPump(buffer int, interval time.Duration, outs []output.Output) *pump {
	return &pump{in: make(chan metrics.Samples, buffer), outputs: outs, interval: interval,
		stop: make(chan struct{}), done: make(chan struct{})}
}

func (p *pump) start() { go p.loop() }

// finish drains what is queued, hands it over and stops the pump. Senders
// must have stopped sending.
func (p *pump) finish() {
	close(p.stop)
	<-p.done
}

func (p *pump) loop() {
	defer close(p.done)
	t := time.NewTicker(p.interval)
	defer t.Stop()
	var buf []metrics.Samples
	flush := func() {
		if len(buf) == 0 {
			return
		}
		for _, o := range p.outputs {
			o.AddMetricSamples(buf)
		}
		buf = nil
	}
	for {
		select {
		case s := <-p.in:
			buf = append(buf, s)
		case <-t.C:
			flush()
		case <-p.stop:
			for {
				select {
				case s := <-p.in:
					buf = append(buf, s)
				default:
					flush()
					return
				}
			}
		}
	}
}
