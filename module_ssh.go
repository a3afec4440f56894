package cdeload

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/grafana/sobek"
	"golang.org/x/crypto/ssh"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/sshtraffic"
	"github.com/cdeload/cdeload/tailnet"
)

// sshOpts are the parsed options of ssh.connect.
type sshOpts struct {
	net  *tailnetObj
	host string
	port int64
	// portSet is set when the script chose the port.
	portSet bool
	cfg     sshtraffic.ClientConfig
	// policy is set when the script chose a host key policy itself.
	policy  bool
	timeout time.Duration
}

// sshConnect implements cde.ssh.connect(options).
func (mi *instance) sshConnect(call sobek.FunctionCall) sobek.Value {
	op := "ssh.connect"
	mi.mustVU(op)
	o := sshOpts{port: 22, timeout: sshtraffic.DefaultConnectTimeout}
	mi.parseOptions(op, call.Argument(0), true, fields{
		"tailnet": func(v sobek.Value) error {
			t, ok := mi.unwrap(v).(*tailnetObj)
			if !ok {
				return errors.New("want a Tailnet made with new Tailnet(...) by this VU")
			}
			o.net = t
			return nil
		},
		"host":       func(v sobek.Value) (err error) { o.host, err = asNonEmpty(v); return err },
		"port":       func(v sobek.Value) (err error) { o.port, err = asInt(v, 1, 65535); o.portSet = true; return err },
		"user":       func(v sobek.Value) (err error) { o.cfg.User, err = asNonEmpty(v); return err },
		"privateKey": func(v sobek.Value) (err error) { o.cfg.PrivateKeyPEM, err = asPrivateKey(v); return err },
		"password":   func(v sobek.Value) (err error) { o.cfg.Password, err = asNonEmpty(v); return err },
		"hostKey": func(v sobek.Value) error {
			s, err := asNonEmpty(v)
			if err == nil {
				o.cfg.KnownHostKey, _, _, _, err = ssh.ParseAuthorizedKey([]byte(s))
			}
			if err != nil {
				return errors.New(`want a public key in authorized_keys form, e.g. "ssh-ed25519 AAAA..."`)
			}
			o.policy = true
			return nil
		},
		"knownHostsFile": func(v sobek.Value) (err error) {
			o.cfg.KnownHostsFile, err = asNonEmpty(v)
			o.policy = true
			return err
		},
		"insecureSkipHostKeyCheck": func(v sobek.Value) (err error) {
			o.cfg.InsecureIgnoreHostKey, err = asBool(v)
			o.policy = o.policy || o.cfg.InsecureIgnoreHostKey
			return err
		},
		"timeout": func(v sobek.Value) (err error) { o.timeout, err = asDuration(v); return err },
	})
	if o.host == "" {
		mi.throw(fmt.Errorf("%s: option host is required (a tailnet IP or a workspace's name)", op))
	}
	n := 0
	for _, set := range []bool{o.cfg.KnownHostKey != nil, o.cfg.KnownHostsFile != "", o.cfg.InsecureIgnoreHostKey} {
		if set {
			n++
		}
	}
	if n > 1 {
		mi.throw(fmt.Errorf("%s: set only one of hostKey, knownHostsFile and insecureSkipHostKeyCheck", op))
	}
	if o.net == nil {
		if mi.defaultNet == nil {
			mi.defaultNet = mi.makeTailnet(op, sobek.Undefined())
		}
		o.net = mi.defaultNet
	}
	o.cfg.HostKeyAlias = o.host
	if o.port != 22 {
		o.cfg.HostKeyAlias = net.JoinHostPort(o.host, strconv.Itoa(int(o.port)))
	}
	op = fmt.Sprintf("ssh.connect(%s:%d)", o.host, o.port)
	meta := mi.hostMeta(o.host)
	e := mi.emitter(mi.vu.Context(), meta)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		s, err := mi.connect(ctx, e, o)
		if err != nil {
			return nil, err
		}
		s.meta = meta
		return func(rt *sobek.Runtime) sobek.Value { return mi.sessionObject(s) }, nil
	})
}

// asPrivateKey parses an SSH private key option: an unencrypted key in
// PEM or OpenSSH format. Its errors never contain the value.
func asPrivateKey(v sobek.Value) ([]byte, error) {
	s, err := asNonEmpty(v)
	if err != nil {
		return nil, fmt.Errorf("%w (an unencrypted private key in PEM or OpenSSH format)", err)
	}
	if _, err := ssh.ParseRawPrivateKey([]byte(s)); err != nil {
		return nil, fmt.Errorf("not a usable private key (want an unencrypted PEM or OpenSSH key): %w", err)
	}
	return []byte(s), nil
}

// connect dials over the tailnet and runs the SSH handshake.
func (mi *instance) connect(ctx context.Context, e *emitter, o sshOpts) (*sshSession, error) {
	if a, ok := mi.root.coderHost(o.host); ok {
		return mi.connectCoder(ctx, e, o, a) // the workspace's own deployment tailnet
	}
	// The timeout covers joining the tailnet too (bounded as well by the
	// Tailnet's own timeout): a join that cannot succeed fails with its
	// cause, not after minutes.
	cctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	r, err := o.net.upAndReport(cctx, e)
	if err != nil {
		if cctx.Err() != nil && ctx.Err() == nil {
			return nil, fmt.Errorf("not connected within the timeout %v: %w", o.timeout, err)
		}
		return nil, err
	}
	if r.src, err = mi.root.labForHost(r.src, o.host); err != nil {
		return nil, err
	}
	cfg := o.cfg
	mi.root.kubeSSHDefaults(o.host, &cfg)
	if l := r.src.lab; l != nil {
		// A lab workspace: its credentials are the default.
		inf := l.info()
		if cfg.User == "" {
			cfg.User = inf.User
		}
		if len(cfg.PrivateKeyPEM) == 0 && cfg.Password == "" {
			cfg.PrivateKeyPEM = []byte(inf.PrivateKeyPEM)
		}
		if !o.policy {
			k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(inf.HostKey))
			if err != nil {
				return nil, fmt.Errorf("the lab's host key %q: %w", inf.HostKey, err)
			}
			cfg.KnownHostKey = k
		}
	}
	if cfg.User == "" {
		return nil, errors.New("option user is required (the target is not a lab workspace)")
	}
	if len(cfg.PrivateKeyPEM) == 0 && cfg.Password == "" {
		return nil, errors.New("set option privateKey or password (the target is not a lab workspace)")
	}
	if !o.policy && cfg.KnownHostKey == nil {
		return nil, errors.New("set one of the options hostKey, knownHostsFile or insecureSkipHostKeyCheck (the target is not a lab workspace)")
	}
	cfg.Timeout = o.timeout
	start := time.Now()
	conn, dinfo, err := r.node.Dial(cctx, "tcp", net.JoinHostPort(o.host, strconv.Itoa(int(o.port))))
	if err != nil {
		return nil, dialError(err, o.timeout)
	}
	return mi.finishConnect(cctx, e, o, cfg, conn, dinfo, start)
}

// finishConnect runs the SSH handshake on a dialled connection and tracks
// the session.
func (mi *instance) finishConnect(cctx context.Context, e *emitter, o sshOpts, cfg sshtraffic.ClientConfig, conn net.Conn, dinfo tailnet.DialInfo, start time.Time) (*sshSession, error) {
	e.emit(func(s *metricSet) *metrics.Metric { return s.tailnetDial }, metrics.D(dinfo.Duration), "path", string(dinfo.Path))
	cc := newConnCounter(conn)
	client, err := sshtraffic.Connect(cctx, cc, cfg)
	if err != nil {
		e.push(e.dataSamples(cc)...)
		return nil, err
	}
	took := time.Since(start)
	samples := append(e.dataSamples(cc), e.sample(e.msOr().sshConnect, metrics.D(took)))
	if e.ms != nil {
		e.push(samples...)
	}
	s := &sshSession{mi: mi, client: client, conn: cc, host: o.host, port: o.port, user: cfg.User,
		path: string(dinfo.Path), took: took}
	if err := mi.root.track(s); err != nil {
		client.Close()
		return nil, err
	}
	return s, nil
}

// msOr returns the metric set, or an empty one for a zero emitter.
func (e *emitter) msOr() *metricSet {
	if e.ms == nil {
		return &metricSet{}
	}
	return e.ms
}

// sshSession is the Go side of a JS SSH session.
type sshSession struct {
	mi     *instance
	client *sshtraffic.Client
	conn   *connCounter
	host   string
	port   int64
	user   string
	path   string
	took   time.Duration
	meta   map[string]string

	closeOnce sync.Once
}

// sessionObject builds the JS session; it runs on the event loop.
func (mi *instance) sessionObject(s *sshSession) *sobek.Object {
	o := mi.vu.Runtime().NewObject()
	set(o, "host", s.host)
	set(o, "port", s.port)
	set(o, "user", s.user)
	set(o, "path", s.path)
	set(o, "serverVersion", s.client.Info().ServerVersion)
	set(o, "connectDurationMs", ms(s.took))
	method(o, "run", s.jsRun)
	method(o, "echo", s.jsEcho)
	method(o, "close", s.jsClose)
	return o
}

func (s *sshSession) jsRun(call sobek.FunctionCall) sobek.Value {
	mi := s.mi
	op := "ssh.run(command)"
	mi.mustVU(op)
	cmd, err := asNonEmpty(call.Argument(0))
	if err != nil {
		mi.throw(fmt.Errorf("%s: command %s: %w", op, describe(call.Argument(0)), err))
	}
	var timeout time.Duration
	mi.parseOptions(op, call.Argument(1), false, fields{
		"timeout": func(v sobek.Value) (err error) { timeout, err = asDuration(v); return err },
	})
	op = fmt.Sprintf("ssh.run(%q) on %s", cmd, s.host)
	e := mi.emitter(mi.vu.Context(), s.meta)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		if timeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, timeout)
			defer cancel()
		}
		res, err := s.client.Run(ctx, cmd)
		e.push(e.dataSamples(s.conn)...)
		if err != nil {
			return nil, err
		}
		return func(rt *sobek.Runtime) sobek.Value {
			o := rt.NewObject()
			set(o, "stdout", string(res.Stdout))
			set(o, "stderr", string(res.Stderr))
			set(o, "exitCode", res.ExitCode)
			set(o, "signal", res.Signal)
			set(o, "truncated", res.Truncated)
			set(o, "durationMs", ms(res.Duration))
			return o
		}, nil
	})
}

// echoOpts parses the options of echo() (ssh and terminal).
func (mi *instance) echoOpts(op string, v sobek.Value, ssh bool) sshtraffic.EchoConfig {
	cfg := sshtraffic.EchoConfig{BytesPerTick: 128, TickInterval: 100 * time.Millisecond}
	f := fields{
		"bytesPerTick": func(v sobek.Value) error {
			n, err := asInt(v, sshtraffic.MinFrameSize, sshtraffic.MaxFrameSize)
			cfg.BytesPerTick = int(n)
			if err != nil {
				return fmt.Errorf("%w (each frame carries a %d-byte header and a newline)", err, sshtraffic.FrameHeaderSize)
			}
			return nil
		},
		"tickInterval": func(v sobek.Value) (err error) { cfg.TickInterval, err = asDuration(v); return err },
		"duration":     func(v sobek.Value) (err error) { cfg.Duration, err = asDuration(v); return err },
		"bytes": func(v sobek.Value) (err error) {
			cfg.TotalBytes, err = asInt(v, 1, 1<<53)
			return err
		},
		"drainTimeout": func(v sobek.Value) (err error) { cfg.DrainTimeout, err = asDuration(v); return err },
	}
	if ssh {
		f["pty"] = func(v sobek.Value) (err error) { cfg.PTY, err = asBool(v); return err }
		f["command"] = func(v sobek.Value) (err error) { cfg.Command, err = asNonEmpty(v); return err }
	}
	mi.parseOptions(op, v, false, f)
	switch {
	case cfg.Duration > 0 && cfg.TotalBytes > 0:
		mi.throw(fmt.Errorf("%s: set duration or bytes, not both", op))
	case cfg.Duration == 0 && cfg.TotalBytes == 0:
		cfg.Duration = 60 * time.Second
	}
	return cfg
}

func (s *sshSession) jsEcho(call sobek.FunctionCall) sobek.Value {
	mi := s.mi
	op := "ssh.echo"
	mi.mustVU(op)
	cfg := mi.echoOpts(op, call.Argument(0), true)
	op = fmt.Sprintf("ssh.echo on %s", s.host)
	e := mi.emitter(mi.vu.Context(), s.meta)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		rec := e.startStream("ssh", s.conn)
		res, err := s.client.Echo(ctx, cfg, rec)
		rec.finish()
		if err != nil && s.meta["workspace"] != "" {
			err = fmt.Errorf("workspace %s (%s): %w", s.meta["workspace"], s.host, err)
		}
		return echoResult(res, err)
	})
}

// echoResult turns an echo outcome into the promise's result. A stream
// error (counted in traffic_errors) resolves with errors > 0 and the
// message in `error`; a configuration error or the end of the iteration
// rejects.
func echoResult(res sshtraffic.EchoResult, err error) (toJS, error) {
	if err != nil && res.Errors == 0 {
		return nil, err
	}
	msg := ""
	if err != nil {
		msg = err.Error()
	}
	return func(rt *sobek.Runtime) sobek.Value {
		o := rt.NewObject()
		set(o, "framesSent", res.FramesSent)
		set(o, "framesReceived", res.FramesReceived)
		set(o, "bytesSent", res.BytesSent)
		set(o, "bytesReceived", res.BytesReceived)
		set(o, "ticksMissed", res.TicksMissed)
		set(o, "duplicates", res.Duplicates)
		set(o, "errors", res.Errors)
		if msg != "" {
			set(o, "error", msg)
		}
		set(o, "durationMs", ms(res.Duration))
		r := rt.NewObject()
		set(r, "count", res.RTT.Count)
		set(r, "min", ms(res.RTT.Min))
		set(r, "mean", ms(res.RTT.Mean))
		set(r, "p50", ms(res.RTT.P50))
		set(r, "p95", ms(res.RTT.P95))
		set(r, "p99", ms(res.RTT.P99))
		set(r, "max", ms(res.RTT.Max))
		set(o, "rtt", r)
		return o
	}, nil
}

func (s *sshSession) jsClose(sobek.FunctionCall) sobek.Value {
	mi := s.mi
	op := fmt.Sprintf("ssh.close() on %s", s.host)
	mi.mustVU(op)
	e := mi.emitter(mi.vu.Context(), s.meta)
	return mi.async(op, func(ctx context.Context) (toJS, error) {
		s.close()
		e.push(e.dataSamples(s.conn)...)
		return undefinedJS, nil
	})
}

// close closes the SSH connection once; the module closes sessions the
// script left open when the run ends.
func (s *sshSession) close() error {
	s.closeOnce.Do(func() {
		s.client.Close()
		s.mi.root.untrack(s)
	})
	return nil
}

// Close implements io.Closer for the root's list of open resources.
func (s *sshSession) Close() error { return s.close() }
