// Command baseline is the plain-Go side of the echo benchmark (bench/echo.sh):
// no JavaScript engine, just the tailnet and sshtraffic packages. It joins a
// standalone lab's tailnet (`cdeload lab`) with one shared node, opens one
// SSH connection per stream to the lab's workspaces (stream i goes to
// workspace i mod W, workspaces sorted by name), and runs the same echo
// streams the benchmark script runs through cdeload: a frame of --bytes
// every --interval for --duration. It prints one JSON object: stream,
// frame, missed-tick and error counts, RTT percentiles over every frame of
// every stream, and the CPU and wall time it used.
//
// Schedule (the same as bench/echo/script.js): all connections are opened
// at once; stream i starts at T0 + i/N * interval with T0 = --settle after
// the dials began, so the N streams are spread evenly over one tick
// interval instead of all writing in the same millisecond, and the echo
// phase does not overlap the connection storm.
//
//	go run ./bench/echo/baseline --lab http://127.0.0.1:7070 --streams 100 --duration 20s
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/cdeload/cdeload/internal/cpuprofile"
	"github.com/cdeload/cdeload/sshtraffic"
	"github.com/cdeload/cdeload/tailnet"
)

// labInfo is the subset of GET /lab/v1/info the baseline needs.
type labInfo struct {
	ControlURL    string `json:"controlURL"`
	AuthKey       string `json:"authKey"`
	User          string `json:"user"`
	PrivateKeyPEM string `json:"privateKeyPEM"`
	HostKey       string `json:"hostKey"`
}

// labWorkspace is the subset of a workspace in GET /lab/v1/workspaces.
type labWorkspace struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// config holds the parsed flags.
type config struct {
	labURL     string
	streams    int
	workspaces int
	bytes      int
	interval   time.Duration
	duration   time.Duration
	settle     time.Duration
	hostname   string
	out        string
	timeline   bool
}

// rttStats are percentiles in milliseconds.
type rttStats struct {
	Count int64   `json:"count"`
	Min   float64 `json:"min"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

// report is the JSON the program prints.
type report struct {
	Program        string   `json:"program"`
	Streams        int      `json:"streams"`
	Workspaces     int      `json:"workspaces"`
	BytesPerTick   int      `json:"bytesPerTick"`
	TickIntervalMs float64  `json:"tickIntervalMs"`
	DurationS      float64  `json:"durationS"`
	FramesSent     int64    `json:"framesSent"`
	FramesReceived int64    `json:"framesReceived"`
	TicksMissed    int64    `json:"ticksMissed"`
	ConnectErrors  int      `json:"connectErrors"`
	StreamErrors   int      `json:"streamErrors"`
	Errors         int      `json:"errors"`
	FirstErrors    []string `json:"firstErrors,omitempty"`
	LateStarts     int      `json:"lateStarts"`
	ConnectMaxMs   float64  `json:"connectMaxMs"`
	UpMs           float64  `json:"tailnetUpMs"`
	RTT            rttStats `json:"rtt"`
	CPUUserS       float64  `json:"cpuUserS"`
	CPUSysS        float64  `json:"cpuSysS"`
	CPUEchoS       float64  `json:"cpuEchoS"`
	EchoWallS      float64  `json:"echoWallS"`
	WallS          float64  `json:"wallS"`
	MaxRSSMB       float64  `json:"maxRSSMB"`
	// PathsAtStart and PathsAtEnd count the workspaces by tailnet path
	// (direct, derp, unknown) when the schedule starts and when it ends.
	PathsAtStart map[string]int `json:"pathsAtStart"`
	PathsAtEnd   map[string]int `json:"pathsAtEnd"`
	// Timeline has one entry per second of the echo phase (with --timeline).
	Timeline []second `json:"timeline,omitempty"`
}

// second summarises the frames that came back during one second of the
// echo phase.
type second struct {
	At     int     `json:"at"`
	Frames int     `json:"frames"`
	P50    float64 `json:"p50"`
	P99    float64 `json:"p99"`
	Max    float64 `json:"max"`
}

func main() {
	stopProfile, err := cpuprofile.StartFromEnv()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	rc := run(os.Args[1:], os.Stdout, os.Stderr)
	stopProfile()
	os.Exit(rc)
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "baseline: %v\n", err)
		return 2
	}
	// Bounded: setup, settle, the schedule, drain and slack.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+cfg.settle+2*cfg.duration)
	defer cancel()
	rep, err := bench(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "baseline: %v\n", err)
		return 1
	}
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		fmt.Fprintf(stderr, "baseline: encode report: %v\n", err)
		return 1
	}
	b = append(b, '\n')
	if cfg.out != "" {
		if err := os.WriteFile(cfg.out, b, 0o644); err != nil {
			fmt.Fprintf(stderr, "baseline: write %s: %v\n", cfg.out, err)
			return 1
		}
		return 0
	}
	stdout.Write(b)
	return 0
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var c config
	fs := flag.NewFlagSet("baseline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&c.labURL, "lab", os.Getenv("CDELOAD_LAB_URL"), "base URL of a standalone `cdeload lab` (default $CDELOAD_LAB_URL)")
	fs.IntVar(&c.streams, "streams", 10, "concurrent echo streams (one SSH connection each)")
	fs.IntVar(&c.workspaces, "workspaces", 0, "use the first W workspaces by name (0 = all); stream i goes to workspace i mod W")
	fs.IntVar(&c.bytes, "bytes", 128, "frame size in bytes")
	fs.DurationVar(&c.interval, "interval", 100*time.Millisecond, "time between frames")
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "how long each stream sends")
	fs.DurationVar(&c.settle, "settle", 10*time.Second, "time from the first dial to the start of the schedule (must cover every connect)")
	fs.StringVar(&c.hostname, "hostname", "echo-baseline", "tailnet host name of the load generator node")
	fs.BoolVar(&c.timeline, "timeline", false, "add per-second RTT figures and tailnet path counts to the report")
	fs.StringVar(&c.out, "out", "", "write the JSON report here instead of stdout")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.labURL == "":
		return c, errors.New("--lab: required (or set CDELOAD_LAB_URL), e.g. http://127.0.0.1:7070")
	case c.streams < 1:
		return c, fmt.Errorf("--streams %d: must be >= 1", c.streams)
	case c.workspaces < 0:
		return c, fmt.Errorf("--workspaces %d: must be >= 0", c.workspaces)
	case c.bytes < sshtraffic.MinFrameSize || c.bytes > sshtraffic.MaxFrameSize:
		return c, fmt.Errorf("--bytes %d: must be in [%d, %d]", c.bytes, sshtraffic.MinFrameSize, sshtraffic.MaxFrameSize)
	case c.interval <= 0:
		return c, fmt.Errorf("--interval %s: must be > 0", c.interval)
	case c.duration <= 0:
		return c, fmt.Errorf("--duration %s: must be > 0", c.duration)
	case c.settle < 0:
		return c, fmt.Errorf("--settle %s: must be >= 0", c.settle)
	}
	return c, nil
}

// getJSON fetches a lab API path into out, with the lab's token from
// $CDELOAD_LAB_TOKEN (its info endpoint requires it).
func getJSON(ctx context.Context, base, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+path, nil)
	if err != nil {
		return fmt.Errorf("lab GET %s: %w", path, err)
	}
	if tok := os.Getenv("CDELOAD_LAB_TOKEN"); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("lab GET %s: %w", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("lab GET %s: read: %w", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("lab GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("lab GET %s: decode: %w", path, err)
	}
	return nil
}

// collector gathers every RTT of one stream (an sshtraffic.Observer).
type collector struct {
	mu   sync.Mutex
	rtts []time.Duration
	at   []time.Time // arrival of each frame, with --timeline
	keep bool
}

func (c *collector) OnRTT(d time.Duration, _ uint64) {
	c.mu.Lock()
	c.rtts = append(c.rtts, d)
	if c.keep {
		c.at = append(c.at, time.Now())
	}
	c.mu.Unlock()
}
func (c *collector) OnBytes(int, int)  {}
func (c *collector) OnTickMissed(int)  {}
func (c *collector) OnError(err error) {}

// streamOutcome is what one stream goroutine reports.
type streamOutcome struct {
	connectErr error
	echoErr    error
	connect    time.Duration
	late       bool
	res        sshtraffic.EchoResult
	rtts       []time.Duration
	at         []time.Time
}

func bench(ctx context.Context, cfg config) (report, error) {
	wallStart := time.Now()
	var inf labInfo
	if err := getJSON(ctx, cfg.labURL, "/lab/v1/info", &inf); err != nil {
		return report{}, err
	}
	var list struct {
		Workspaces []labWorkspace `json:"workspaces"`
	}
	if err := getJSON(ctx, cfg.labURL, "/lab/v1/workspaces", &list); err != nil {
		return report{}, err
	}
	wss := list.Workspaces
	slices.SortFunc(wss, func(a, b labWorkspace) int { return strings.Compare(a.Name, b.Name) })
	if cfg.workspaces > 0 {
		if len(wss) < cfg.workspaces {
			return report{}, fmt.Errorf("--workspaces %d: the lab has only %d", cfg.workspaces, len(wss))
		}
		wss = wss[:cfg.workspaces]
	}
	if len(wss) == 0 {
		return report{}, errors.New("the lab has no workspaces (start it with --workspaces N)")
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(inf.HostKey))
	if err != nil {
		return report{}, fmt.Errorf("the lab's host key %q: %w", inf.HostKey, err)
	}

	node, err := tailnet.New(tailnet.Config{ControlURL: inf.ControlURL, AuthKey: inf.AuthKey, Hostname: cfg.hostname})
	if err != nil {
		return report{}, fmt.Errorf("tailnet node: %w", err)
	}
	// Close can hang (seen once at 300 streams: a TCP segment stuck on
	// netstack's full outbound queue while the node shut down): the report
	// must not wait for it beyond closeGrace.
	defer closeWithin(node, closeGrace)
	up, err := node.Up(ctx)
	if err != nil {
		return report{}, fmt.Errorf("tailnet up: %w", err)
	}

	echoCfg := sshtraffic.EchoConfig{BytesPerTick: cfg.bytes, TickInterval: cfg.interval, Duration: cfg.duration}
	// Every stream connects at once, then waits for its slot T0 + i/N·interval
	// with T0 = settle after the dials began (the script's T0 is settle after
	// its scenario started, when its VUs begin to dial). A stream whose
	// connection is not up by its slot starts late (LateStarts).
	t0 := time.Now().Add(cfg.settle)
	outs := make([]streamOutcome, cfg.streams)
	var done sync.WaitGroup
	for i := range cfg.streams {
		done.Add(1)
		go func() {
			defer done.Done()
			slot := t0.Add(time.Duration(int64(cfg.interval) * int64(i) / int64(cfg.streams)))
			outs[i] = oneStream(ctx, node, wss[i%len(wss)].Address, inf, hostKey, echoCfg, slot, cfg.timeline)
		}()
	}
	var ruEcho0 syscall.Rusage
	var pathsStart map[string]int
	select {
	case <-time.After(time.Until(t0)):
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ruEcho0)
		if cfg.timeline {
			pathsStart = paths(ctx, node, wss, cfg.streams)
		}
	case <-ctx.Done():
	}
	done.Wait()
	echoWall := time.Since(t0)
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	var pathsEnd map[string]int
	if cfg.timeline {
		pathsEnd = paths(ctx, node, wss, cfg.streams)
	}

	rep := report{
		Program: "baseline", Streams: cfg.streams, Workspaces: len(wss), BytesPerTick: cfg.bytes,
		TickIntervalMs: ms(cfg.interval), DurationS: cfg.duration.Seconds(), UpMs: ms(up.Duration),
		PathsAtStart: pathsStart, PathsAtEnd: pathsEnd,
	}
	if cfg.timeline {
		rep.Timeline = timeline(t0, outs)
	}
	var all []time.Duration
	for _, o := range outs {
		rep.FramesSent += o.res.FramesSent
		rep.FramesReceived += o.res.FramesReceived
		rep.TicksMissed += o.res.TicksMissed
		rep.ConnectMaxMs = max(rep.ConnectMaxMs, ms(o.connect))
		if o.late {
			rep.LateStarts++
		}
		switch {
		case o.connectErr != nil:
			rep.ConnectErrors++
			rep.FirstErrors = appendFew(rep.FirstErrors, "connect: "+o.connectErr.Error())
		case o.echoErr != nil:
			rep.StreamErrors++
			rep.FirstErrors = appendFew(rep.FirstErrors, "echo: "+o.echoErr.Error())
		}
		all = append(all, o.rtts...)
	}
	rep.Errors = rep.ConnectErrors + rep.StreamErrors
	rep.RTT = summarize(all)
	rep.CPUUserS = tv(ru.Utime)
	rep.CPUSysS = tv(ru.Stime)
	rep.CPUEchoS = tv(ru.Utime) + tv(ru.Stime) - tv(ruEcho0.Utime) - tv(ruEcho0.Stime)
	rep.EchoWallS = echoWall.Seconds()
	rep.MaxRSSMB = float64(ru.Maxrss) / 1024
	rep.WallS = time.Since(wallStart).Seconds()
	return rep, nil
}

// closeGrace bounds how long the program waits for its tailnet node to
// close before it reports anyway.
const closeGrace = 15 * time.Second

// closeWithin closes c, waiting at most grace; a Close still running then
// is left behind (the program is about to exit) and said on stderr.
func closeWithin(c io.Closer, grace time.Duration) {
	done := make(chan struct{})
	go func() {
		_ = c.Close()
		close(done)
	}()
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		fmt.Fprintf(os.Stderr, "baseline: the tailnet node did not close within %v; reporting anyway\n", grace)
	}
}

// oneStream connects, waits for its start slot, and runs one echo stream.
func oneStream(ctx context.Context, node *tailnet.Node, addr string, inf labInfo, hostKey ssh.PublicKey,
	echoCfg sshtraffic.EchoConfig, slot time.Time, keepTimes bool,
) (o streamOutcome) {
	begin := time.Now()
	client, err := connect(ctx, node, addr, inf, hostKey)
	o.connect = time.Since(begin)
	if err != nil {
		o.connectErr = err
		return o
	}
	defer client.Close()
	if wait := time.Until(slot); wait > 0 {
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			o.connectErr = ctx.Err()
			return o
		}
	} else {
		o.late = true
	}
	col := &collector{keep: keepTimes}
	o.res, o.echoErr = client.Echo(ctx, echoCfg, col)
	o.rtts, o.at = col.rtts, col.at
	return o
}

// connect dials addr:22 over the tailnet and runs the SSH handshake, as
// cde.ssh.connect does.
func connect(ctx context.Context, node *tailnet.Node, addr string, inf labInfo, hostKey ssh.PublicKey) (*sshtraffic.Client, error) {
	cctx, cancel := context.WithTimeout(ctx, sshtraffic.DefaultConnectTimeout)
	defer cancel()
	conn, _, err := node.Dial(cctx, "tcp", net.JoinHostPort(addr, "22"))
	if err != nil {
		return nil, fmt.Errorf("dial %s:22: %w", addr, err)
	}
	c, err := sshtraffic.Connect(cctx, conn, sshtraffic.ClientConfig{
		User: inf.User, PrivateKeyPEM: []byte(inf.PrivateKeyPEM), KnownHostKey: hostKey, HostKeyAlias: addr,
	})
	if err != nil {
		return nil, fmt.Errorf("ssh %s: %w", addr, err)
	}
	return c, nil
}

// paths counts the workspaces in use by their current tailnet path.
func paths(ctx context.Context, node *tailnet.Node, wss []labWorkspace, streams int) map[string]int {
	out := map[string]int{}
	for _, ws := range wss[:min(len(wss), streams)] {
		p, err := node.Path(ctx, ws.Address)
		if err != nil {
			p = "error"
		}
		out[string(p)]++
	}
	return out
}

// timeline buckets the frames by the second (since t0) they came back in.
func timeline(t0 time.Time, outs []streamOutcome) []second {
	var buckets [][]time.Duration
	for _, o := range outs {
		for k, at := range o.at {
			i := int(at.Sub(t0) / time.Second)
			if i < 0 {
				i = 0
			}
			for len(buckets) <= i {
				buckets = append(buckets, nil)
			}
			buckets[i] = append(buckets[i], o.rtts[k])
		}
	}
	out := make([]second, len(buckets))
	for i, b := range buckets {
		st := summarize(b)
		out[i] = second{At: i, Frames: len(b), P50: st.P50, P99: st.P99, Max: st.Max}
	}
	return out
}

// summarize computes percentiles over all RTTs, interpolating between the
// two nearest ranks (as a k6 Trend does).
func summarize(d []time.Duration) rttStats {
	if len(d) == 0 {
		return rttStats{}
	}
	slices.Sort(d)
	var sum time.Duration
	for _, v := range d {
		sum += v
	}
	return rttStats{
		Count: int64(len(d)), Min: ms(d[0]), Max: ms(d[len(d)-1]),
		Mean: ms(sum) / float64(len(d)),
		P50:  percentile(d, 0.50), P95: percentile(d, 0.95), P99: percentile(d, 0.99),
	}
}

// percentile returns the p-quantile (0..1) of sorted d in milliseconds.
func percentile(d []time.Duration, p float64) float64 {
	pos := p * float64(len(d)-1)
	lo := int(pos)
	if lo >= len(d)-1 {
		return ms(d[len(d)-1])
	}
	frac := pos - float64(lo)
	return ms(d[lo]) + frac*(ms(d[lo+1])-ms(d[lo]))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

func appendFew(s []string, e string) []string {
	if len(s) < 5 {
		return append(s, e)
	}
	return s
}
