package js

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/lib"
)

// parallelRequests runs total requests with n workers and returns req/s.
func parallelRequests(total, n int, do func(worker int) error) (float64, error) {
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := time.Now()
	for w := 0; w < n; w++ {
		count := total / n
		if w < total%n {
			count++
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < count; i++ {
				if err := do(w); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return float64(total) / el.Seconds(), nil
}

// BenchmarkHTTPGet compares k6/http GETs from 2×GOMAXPROCS VUs with a
// plain Go net/http client at the same concurrency against the same
// loopback server, in the same process. The two alternate in rounds (A B A
// B …) so that a shared machine's noise hits both; x-plain-go is k6/http's
// req/s over the plain client's.
func BenchmarkHTTPGet(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"ok":true,"payload":"0123456789abcdef0123456789abcdef"}`)
	}))
	defer srv.Close()
	n := 2 * runtime.GOMAXPROCS(0)

	tr := &http.Transport{MaxIdleConnsPerHost: n}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	plainGet := func(int) error {
		resp, err := client.Get(srv.URL)
		if err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return err
	}
	src := `import http from 'k6/http';
export default function () { const r = http.get(__ENV.URL); if (r.status !== 200) { throw new Error(r.error); } }
`
	r, ch := benchEnv(b, src, map[string]string{"URL": srv.URL})
	vus := make([]lib.ActiveVU, n)
	for i := range vus {
		vus[i] = activateBench(b, r, ch, uint64(i+1))
	}
	k6Get := func(w int) error { return vus[w].RunOnce() }
	// Warm up: connections, JIT-free but allocator and pools warm.
	if _, err := parallelRequests(10*n, n, plainGet); err != nil {
		b.Fatal(err)
	}
	if _, err := parallelRequests(10*n, n, k6Get); err != nil {
		b.Fatal(err)
	}
	const rounds = 6
	per := max(b.N/rounds, n)
	var plainT, k6T float64 // seconds
	b.ResetTimer()
	for i := 0; i < rounds; i++ {
		rate, err := parallelRequests(per, n, plainGet)
		if err != nil {
			b.Fatal(err)
		}
		plainT += float64(per) / rate
		rate, err = parallelRequests(per, n, k6Get)
		if err != nil {
			b.Fatal(err)
		}
		k6T += float64(per) / rate
	}
	total := float64(per * rounds)
	b.ReportMetric(total/plainT, "plain-req/s")
	b.ReportMetric(total/k6T, "k6http-req/s")
	b.ReportMetric(plainT/k6T, "x-plain-go")
}

// vusHeap returns the heap taken by parsing src and initialising n VUs.
func vusHeap(b *testing.B, src string, n int) (uint64, []lib.InitializedVU) {
	before := heapInuse()
	r, ch := benchEnv(b, src, nil)
	vus := make([]lib.InitializedVU, n)
	for j := range vus {
		v, err := r.NewVU(context.Background(), uint64(j+1), uint64(j+1), ch)
		if err != nil {
			b.Fatal(err)
		}
		vus[j] = v
	}
	after := heapInuse()
	runtime.KeepAlive(r)
	if after < before {
		return 0, vus
	}
	return after - before, vus
}

// BenchmarkHTTPVUMemory reports the heap per VU of a script importing
// k6/http, at 1000 VUs, and the same for a script importing nothing.
func BenchmarkHTTPVUMemory(b *testing.B) {
	const vus = 1000
	for i := 0; i < b.N; i++ {
		bare, keep1 := vusHeap(b, "export default function () {}\n", vus)
		withHTTP, keep2 := vusHeap(b, "import http from 'k6/http';\nexport default function () { http.get; }\n", vus)
		runtime.KeepAlive(keep1)
		runtime.KeepAlive(keep2)
		b.ReportMetric(float64(withHTTP)/vus, "bytes/VU-k6http")
		b.ReportMetric(float64(bare)/vus, "bytes/VU-bare")
	}
}

// BenchmarkSharedArrayMemory reports what a SharedArray of 10 MB of JSON
// costs in total at 100 VUs: the heap with it minus the heap of the same
// script without it.
func BenchmarkSharedArrayMemory(b *testing.B) {
	const vus = 100
	withArray := `import { SharedArray } from 'k6/data';
const pad = 'x'.repeat(1000);
const data = new SharedArray('big', function () {
	const out = [];
	for (let i = 0; i < 10 * 1024; i++) { out.push({ id: i, pad: pad }); }
	return out;
});
export default function () { return data[__ITER % data.length].id; }
`
	without := `import { SharedArray } from 'k6/data';
export default function () { return SharedArray; }
`
	for i := 0; i < b.N; i++ {
		with, keep1 := vusHeap(b, withArray, vus)
		runtime.KeepAlive(keep1)
		keep1 = nil
		base, keep2 := vusHeap(b, without, vus)
		runtime.KeepAlive(keep2)
		cost := float64(with) - float64(base)
		b.ReportMetric(cost/(1<<20), "MB-sharedarray")
		b.ReportMetric(float64(10*1024*(len(`{"id":10000,"pad":""}`)+1000))/(1<<20), "MB-json")
	}
}
