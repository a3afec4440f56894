package k6http

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grafana/sobek"

	"github.com/cdeload/cdeload/engine/metrics"
)

// emit pushes the metrics of every hop, and the bytes the VU's
// connections moved since the last emission.
func (in *instance) emit(r *request, hops []*hop) {
	st := in.vu.State()
	hm := in.mod.metrics
	if st == nil || hm == nil {
		return
	}
	base, meta := st.Tags()
	enabled := in.cfg.tagSet
	add := func(t *metrics.TagSet, k, v string) *metrics.TagSet {
		if enabled[k] {
			return t.With(k, v)
		}
		return t
	}
	samples := make([]metrics.Sample, 0, len(hops)*9+2)
	var end time.Time
	for _, h := range hops {
		t := base
		for k, v := range r.tags {
			t = t.With(k, v)
		}
		t = add(t, "method", h.method)
		t = add(t, "url", h.url)
		name := r.name
		if name == "" || len(hops) > 1 && h != hops[0] && r.tags["name"] == "" {
			name = h.url
		}
		if _, has := r.tags["name"]; !has {
			t = add(t, "name", name)
		}
		t = add(t, "status", strconv.Itoa(h.status))
		if h.proto != "" {
			t = add(t, "proto", h.proto)
		}
		if h.tlsVersion != "" {
			t = add(t, "tls_version", h.tlsVersion)
		}
		if h.errCode != 0 {
			t = add(t, "error_code", strconv.Itoa(h.errCode))
		}
		if h.errMsg != "" {
			t = add(t, "error", h.errMsg)
		}
		expected := false
		if r.expected != nil {
			expected = h.err == nil && r.expected.match(h.status)
			t = add(t, "expected_response", strconv.FormatBool(expected))
		}
		end = h.start.Add(h.timings.blocked + h.timings.connecting + h.timings.tlsHandshaking + h.timings.duration)
		tm := h.timings
		s := func(m *metrics.Metric, v float64) {
			samples = append(samples, metrics.Sample{Metric: m, Tags: t, Time: end, Value: v, Metadata: meta})
		}
		s(hm.reqs, 1)
		s(hm.duration, ms(tm.duration))
		s(hm.blocked, ms(tm.blocked))
		s(hm.connecting, ms(tm.connecting))
		s(hm.tls, ms(tm.tlsHandshaking))
		s(hm.sending, ms(tm.sending))
		s(hm.waiting, ms(tm.waiting))
		s(hm.receiving, ms(tm.receiving))
		if r.expected != nil {
			s(hm.failed, metrics.B(!expected))
		}
	}
	if hm.dataSent != nil {
		sent, recv := in.client.sent.Swap(0), in.client.received.Swap(0)
		now := time.Now()
		samples = append(samples,
			metrics.Sample{Metric: hm.dataSent, Tags: base, Time: now, Value: float64(sent), Metadata: meta},
			metrics.Sample{Metric: hm.dataReceived, Tags: base, Time: now, Value: float64(recv), Metadata: meta})
	}
	metrics.PushIfNotDone(in.vu.Context(), st.Samples, samples...)
}

// asyncRequest is http.asyncRequest: the request runs off the VU
// goroutine and the returned promise settles on the VU's event loop.
func (in *instance) asyncRequest(call sobek.FunctionCall) sobek.Value {
	p, resolve, reject := in.rt.NewPromise()
	method := strings.ToUpper(call.Argument(0).String())
	var r *request
	var c *vuClient
	err := func() (err error) {
		defer func() {
			if x := recover(); x != nil {
				if e, ok := x.(error); ok {
					err = e
					return
				}
				panic(x)
			}
		}()
		c = in.ready("http.asyncRequest")
		r = in.parse(method, call.Argument(1), call.Argument(2), call.Argument(3))
		return nil
	}()
	if err != nil {
		_ = reject(err)
		return in.rt.ToValue(p)
	}
	enqueue := in.vu.RegisterCallback()
	ctx := in.vu.Context()
	go func() {
		hops := c.do(ctx, r)
		enqueue(func() error {
			var res sobek.Value
			ferr := func() (ferr error) {
				defer func() {
					if x := recover(); x != nil {
						if e, ok := x.(error); ok {
							ferr = e
							return
						}
						panic(x)
					}
				}()
				res = in.finish(r, hops)
				return nil
			}()
			if ferr != nil {
				return reject(ferr)
			}
			return resolve(res)
		})
	}()
	return in.rt.ToValue(p)
}

// batch is http.batch: requests given as an array or an object run in
// parallel, bounded by the batch and batchPerHost options.
func (in *instance) batch(reqsV sobek.Value) sobek.Value {
	c := in.ready("http.batch")
	obj, ok := reqsV.(*sobek.Object)
	if !ok || isNullish(reqsV) {
		in.throw("http.batch: the argument must be an array or an object of requests")
	}
	isArray := obj.ClassName() == "Array"
	var keys []string
	if isArray {
		n := int(obj.Get("length").ToInteger())
		for i := 0; i < n; i++ {
			keys = append(keys, strconv.Itoa(i))
		}
	} else {
		keys = obj.Keys()
	}
	reqs := make([]*request, len(keys))
	for i, k := range keys {
		reqs[i] = in.batchItem(obj.Get(k), k)
	}
	all, perHost := in.cfg.batch()
	results := runBatch(in.vu.Context(), c, reqs, all, perHost)
	var out *sobek.Object
	if isArray {
		out = in.rt.NewArray()
	} else {
		out = in.rt.NewObject()
	}
	for i, k := range keys {
		_ = out.Set(k, in.finish(reqs[i], results[i]))
	}
	return out
}

// batchItem parses one request of a batch: a URL, an array
// [method, url, body, params] or an object {method, url, body, params}.
func (in *instance) batchItem(v sobek.Value, key string) *request {
	if o, ok := v.(*sobek.Object); ok {
		if _, isURL := v.Export().(*taggedURL); !isURL {
			if o.ClassName() == "Array" {
				m := o.Get("0")
				if isNullish(m) {
					in.throw("http.batch: request %s: the method is missing", key)
				}
				return in.parse(strings.ToUpper(m.String()), o.Get("1"), o.Get("2"), o.Get("3"))
			}
			m := http.MethodGet
			if mv := o.Get("method"); !isNullish(mv) {
				m = strings.ToUpper(mv.String())
			}
			return in.parse(m, o.Get("url"), o.Get("body"), o.Get("params"))
		}
	}
	return in.parse(http.MethodGet, v, sobek.Undefined(), sobek.Undefined())
}

// runBatch runs reqs concurrently, at most all at once and at most
// perHost per host.
func runBatch(ctx context.Context, c *vuClient, reqs []*request, all, perHost int) [][]*hop {
	if all <= 0 {
		all = len(reqs)
	}
	sem := make(chan struct{}, max(all, 1))
	var mu sync.Mutex
	hostSem := map[string]chan struct{}{}
	hostOf := func(r *request) chan struct{} {
		if perHost <= 0 {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		ch, ok := hostSem[r.url.Host]
		if !ok {
			ch = make(chan struct{}, perHost)
			hostSem[r.url.Host] = ch
		}
		return ch
	}
	out := make([][]*hop, len(reqs))
	var wg sync.WaitGroup
	for i, r := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if hs := hostOf(r); hs != nil {
				hs <- struct{}{}
				defer func() { <-hs }()
			}
			out[i] = c.do(ctx, r)
		}()
	}
	wg.Wait()
	return out
}
