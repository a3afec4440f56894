package cdeload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cdeload/cdeload/sshtraffic"
)

// maxCookedFrame is the longest frame a canonical-mode terminal passes
// intact (a line of at most 4095 bytes plus its newline).
const maxCookedFrame = 4096

// terminalEcho runs an echo stream over a web terminal running cat in a
// cooked tty, with the frame format and tick schedule of sshtraffic: tick n
// is due at start + n·interval, a tick more than one interval overdue is
// counted as missed and not sent. The terminal returns every frame twice
// (the tty's echo, then cat's copy) with CR added before LF: CRs are
// dropped, the first copy of a frame gives its RTT and later copies count
// as duplicates.
func terminalEcho(ctx context.Context, rw io.ReadWriter, cfg sshtraffic.EchoConfig, obs sshtraffic.Observer) (sshtraffic.EchoResult, error) {
	if cfg.BytesPerTick > maxCookedFrame {
		return sshtraffic.EchoResult{}, fmt.Errorf("bytesPerTick %d is above %d: a terminal in canonical mode truncates longer lines", cfg.BytesPerTick, maxCookedFrame)
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = sshtraffic.DefaultDrainTimeout
	}
	frame, err := sshtraffic.NewFrame(cfg.BytesPerTick)
	if err != nil {
		return sshtraffic.EchoResult{}, err
	}
	s := &termStream{cfg: cfg, obs: obs, progress: make(chan struct{}, 1)}
	cr := &countReader{r: rw, obs: obs, n: &s.bytesRecv}
	fr, err := sshtraffic.NewFrameReader(cr, cfg.BytesPerTick, true)
	if err != nil {
		return sshtraffic.EchoResult{}, err
	}
	s.start = time.Now()
	readErr := make(chan error, 1)
	go func() { readErr <- s.read(fr) }()

	werr := s.write(ctx, rw, frame)
	if werr == nil {
		werr = s.drain(ctx, readErr)
	}
	res := s.result()
	if werr != nil && ctx.Err() == nil {
		res.Errors = 1
		obs.OnError(werr)
	}
	return res, werr
}

type termStream struct {
	cfg   sshtraffic.EchoConfig
	obs   sshtraffic.Observer
	start time.Time

	framesSent, framesRecv, bytesSent, bytesRecv, missed, dups atomic.Int64
	progress                                                   chan struct{}

	mu   sync.Mutex
	rtts []time.Duration
	seen map[uint64]bool
}

// write sends the frames on schedule; it returns when the schedule ends.
func (s *termStream) write(ctx context.Context, w io.Writer, frame []byte) error {
	interval := s.cfg.TickInterval
	totalTicks, totalFrames := int64(-1), int64(-1)
	if s.cfg.Duration > 0 {
		totalTicks = int64((s.cfg.Duration + interval - 1) / interval)
	} else {
		totalFrames = (s.cfg.TotalBytes + int64(s.cfg.BytesPerTick) - 1) / int64(s.cfg.BytesPerTick)
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	for n := int64(0); ; {
		if totalTicks >= 0 && n >= totalTicks || totalFrames >= 0 && s.framesSent.Load() >= totalFrames {
			return nil
		}
		due := time.Duration(n) * interval
		if wait := due - time.Since(s.start); wait > 0 {
			timer.Reset(wait)
			select {
			case <-timer.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if late := time.Since(s.start) - due; late > interval {
			skip := int64(late / interval)
			if totalTicks >= 0 && n+skip > totalTicks {
				skip = totalTicks - n
			}
			s.missed.Add(skip)
			s.obs.OnTickMissed(int(skip))
			n += skip
			continue
		}
		seq := uint64(s.framesSent.Load())
		sshtraffic.PutFrameHeader(frame, seq, int64(time.Since(s.start)))
		nw, err := w.Write(frame)
		if nw > 0 {
			s.bytesSent.Add(int64(nw))
			s.obs.OnBytes(nw, 0)
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("write frame %d: %w", seq, err)
		}
		s.framesSent.Add(1)
		n++
	}
}

// read parses echoed frames until the stream ends.
func (s *termStream) read(fr *sshtraffic.FrameReader) error {
	for {
		h, err := fr.Next()
		if err != nil {
			return err
		}
		s.mu.Lock()
		if s.seen == nil {
			s.seen = map[uint64]bool{}
		}
		dup := s.seen[h.Seq]
		s.seen[h.Seq] = true
		s.mu.Unlock()
		if dup {
			s.dups.Add(1)
			continue
		}
		rtt := time.Since(s.start) - time.Duration(h.SendNanos)
		s.mu.Lock()
		s.rtts = append(s.rtts, rtt)
		s.mu.Unlock()
		s.obs.OnRTT(rtt, h.Seq)
		s.framesRecv.Add(1)
		select {
		case s.progress <- struct{}{}:
		default:
		}
	}
}

// drain waits for the frames still in flight.
func (s *termStream) drain(ctx context.Context, readErr <-chan error) error {
	t := time.NewTimer(s.cfg.DrainTimeout)
	defer t.Stop()
	for s.framesRecv.Load() < s.framesSent.Load() {
		select {
		case <-s.progress:
		case err := <-readErr:
			if s.framesRecv.Load() >= s.framesSent.Load() {
				return nil
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				err = sshtraffic.ErrFarEndClosed
			}
			return fmt.Errorf("terminal echo after %d of %d frames: %w", s.framesRecv.Load(), s.framesSent.Load(), err)
		case <-t.C:
			return fmt.Errorf("terminal echo: %d of %d frames back after %v: %w", s.framesRecv.Load(), s.framesSent.Load(), s.cfg.DrainTimeout, sshtraffic.ErrDrainTimeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (s *termStream) result() sshtraffic.EchoResult {
	s.mu.Lock()
	rtts := slices.Clone(s.rtts)
	s.mu.Unlock()
	res := sshtraffic.EchoResult{
		FramesSent: s.framesSent.Load(), FramesReceived: s.framesRecv.Load(),
		BytesSent: s.bytesSent.Load(), BytesReceived: s.bytesRecv.Load(),
		TicksMissed: s.missed.Load(), Duplicates: s.dups.Load(),
		Duration: time.Since(s.start),
	}
	if len(rtts) > 0 {
		slices.Sort(rtts)
		var sum time.Duration
		for _, d := range rtts {
			sum += d
		}
		q := func(p float64) time.Duration { return rtts[int(p*float64(len(rtts)-1)+0.5)] }
		res.RTT = sshtraffic.RTTSummary{Count: int64(len(rtts)), Min: rtts[0], Max: rtts[len(rtts)-1],
			Mean: sum / time.Duration(len(rtts)), P50: q(0.50), P95: q(0.95), P99: q(0.99)}
	}
	return res
}

// countReader reports the bytes it reads to the observer.
type countReader struct {
	r   io.Reader
	obs sshtraffic.Observer
	n   *atomic.Int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.n.Add(int64(n))
		c.obs.OnBytes(0, n)
	}
	return n, err
}
