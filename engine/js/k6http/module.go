package k6http

import (
	"bytes"
	"fmt"
	"sync"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/metrics"
	"github.com/cdeload/cdeload/engine/modules"
)

// Module is the k6/http module of one script: the parsed options and the
// HTTP metrics, shared by its VUs.
type Module struct {
	mu      sync.Mutex
	raw     []byte
	cfg     *config
	cfgErr  error
	metrics *httpMetrics
}

// New returns the k6/http module for one script.
func New() *Module { return &Module{} }

// httpMetrics are k6's HTTP metrics.
type httpMetrics struct {
	reqs, failed, duration, blocked, connecting, tls, sending, waiting, receiving *metrics.Metric
	dataSent, dataReceived                                                        *metrics.Metric
}

func registerMetrics(env *modules.InitEnvironment) (*httpMetrics, error) {
	var errs []error
	reg := func(name string, t metrics.MetricType, vt ...metrics.ValueType) *metrics.Metric {
		m, err := env.Registry.NewMetric(name, t, vt...)
		if err != nil {
			errs = append(errs, err)
		}
		return m
	}
	hm := &httpMetrics{
		reqs:       reg("http_reqs", metrics.Counter),
		failed:     reg("http_req_failed", metrics.Rate),
		duration:   reg("http_req_duration", metrics.Trend, metrics.Time),
		blocked:    reg("http_req_blocked", metrics.Trend, metrics.Time),
		connecting: reg("http_req_connecting", metrics.Trend, metrics.Time),
		tls:        reg("http_req_tls_handshaking", metrics.Trend, metrics.Time),
		sending:    reg("http_req_sending", metrics.Trend, metrics.Time),
		waiting:    reg("http_req_waiting", metrics.Trend, metrics.Time),
		receiving:  reg("http_req_receiving", metrics.Trend, metrics.Time),
	}
	if env.Builtin != nil {
		hm.dataSent, hm.dataReceived = env.Builtin.DataSent, env.Builtin.DataReceived
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("k6/http: registering metrics: %w", errs[0])
	}
	return hm, nil
}

// config returns the options parsed from raw, parsing once per distinct
// value.
func (m *Module) config(raw []byte) (*config, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.cfg != nil || m.cfgErr != nil {
		if bytes.Equal(raw, m.raw) {
			return m.cfg, m.cfgErr
		}
	}
	m.raw = append([]byte(nil), raw...)
	m.cfg, m.cfgErr = parseConfig(raw)
	return m.cfg, m.cfgErr
}

// NewModuleInstance implements modules.Module.
func (m *Module) NewModuleInstance(vu modules.VU) modules.Instance {
	in := &instance{mod: m, vu: vu, rt: vu.Runtime(), jarIter: -1}
	if env := vu.InitEnv(); env != nil {
		m.mu.Lock()
		if m.metrics == nil {
			hm, err := registerMetrics(env)
			if err != nil {
				in.initErr = err
			}
			m.metrics = hm
		}
		m.mu.Unlock()
	}
	in.callback = defaultExpected()
	return in
}

// instance is one VU's k6/http.
type instance struct {
	mod      *Module
	vu       modules.VU
	rt       *sobek.Runtime
	initErr  error
	client   *vuClient
	cfg      *config
	jar      *cookieJar
	jarObj   *sobek.Object
	jarIter  int64
	lastIter int64
	callback *expectedStatuses
}

// Exports implements modules.Instance.
func (in *instance) Exports() modules.Exports {
	named := map[string]any{
		"request":             in.request,
		"get":                 in.method("GET", false),
		"head":                in.method("HEAD", false),
		"post":                in.method("POST", true),
		"put":                 in.method("PUT", true),
		"patch":               in.method("PATCH", true),
		"del":                 in.method("DELETE", true),
		"options":             in.method("OPTIONS", true),
		"batch":               in.batch,
		"asyncRequest":        in.asyncRequest,
		"file":                in.file,
		"url":                 in.taggedURL,
		"expectedStatuses":    in.expectedStatuses,
		"setResponseCallback": in.setResponseCallback,
		"cookieJar":           in.cookieJar,
		"CookieJar":           in.newCookieJarObject,
		"TLS_1_0":             "tls1.0",
		"TLS_1_1":             "tls1.1",
		"TLS_1_2":             "tls1.2",
		"TLS_1_3":             "tls1.3",
	}
	return modules.Exports{Named: named}
}

func (in *instance) throw(format string, args ...any) {
	panic(in.rt.NewGoError(fmt.Errorf(format, args...)))
}

// ready returns the VU's client, making it at the VU's first request,
// and resets the VU's cookie jar when a new iteration started.
func (in *instance) ready(what string) *vuClient {
	st := in.vu.State()
	if st == nil {
		in.throw("%s: making requests in the init context is not supported", what)
	}
	if in.initErr != nil {
		in.throw("%w", in.initErr)
	}
	if in.client == nil {
		cfg, err := in.mod.config(st.Options)
		if err != nil {
			in.throw("%w", err)
		}
		in.cfg = cfg
		in.client = newVUClient(cfg)
		in.lastIter = st.Iteration
	}
	if st.Iteration != in.lastIter {
		in.lastIter = st.Iteration
		if in.cfg.NoVUConnectionReuse {
			in.client.transport.CloseIdleConnections()
		}
	}
	in.vuJar()
	return in.client
}

// vuJar returns the VU's cookie jar, a new one for every iteration.
func (in *instance) vuJar() *cookieJar {
	iter := int64(-1)
	if st := in.vu.State(); st != nil {
		iter = st.Iteration
	}
	if in.jar == nil || iter != in.jarIter {
		in.jar = newCookieJar()
		in.jarObj = nil
		in.jarIter = iter
	}
	return in.jar
}

// CloseIdle releases the VU's idle connections.
func (in *instance) CloseIdle() {
	if in.client != nil {
		in.client.transport.CloseIdleConnections()
	}
}

// sinceMs is a duration in k6's time unit.
func ms(d time.Duration) float64 { return metrics.D(d) }
