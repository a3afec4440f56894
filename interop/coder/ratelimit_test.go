package coder_test

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/workspace"
	"github.com/cdeload/cdeload/workspace/coder"
)

// TestRateLimitBackoff spends the owner's budget of coderd's default rate
// limit (512 requests a minute per user and endpoint) on the two endpoints
// a create starts with, then creates two workspaces without the bypass
// header: the provider meets 429, waits and retries, and both workspaces
// get built, reach a connected agent and are removed by Cleanup.
func TestRateLimitBackoff(t *testing.T) {
	p, _ := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	limited, err := exhaust(ctx, p.URL, p.Token, "/api/v2/organizations", "/api/v2/users?limit=1")
	if err != nil {
		t.Fatal(err)
	}
	if limited == 0 {
		t.Fatal("coderd answered no 429 to the burst: is the peer running with rate limits off?")
	}
	prov, err := coder.NewProvider(coder.Config{URL: p.URL, Token: p.Token, PollInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	var ready []workspace.Workspace
	for i := 0; i < 2; i++ {
		ws, err := prov.Create(ctx, workspace.CreateRequest{Template: p.Template})
		if err == nil {
			ws, err = prov.WaitReady(ctx, ws)
		}
		if err != nil {
			_ = prov.Cleanup(context.Background())
			t.Fatalf("workspace %d under the rate limit: %v", i, err)
		}
		ready = append(ready, ws)
	}
	st := prov.Client().Stats()
	if st.RateLimited == 0 || st.Retries < st.RateLimited {
		t.Errorf("client stats %+v: want 429 answers, each followed by a retry", st)
	}
	c := ownerClient(t, p)
	for _, ws := range ready {
		w, err := c.Workspace(ctx, ws.ID)
		if err != nil || len(w.LatestBuild.Agents()) == 0 || w.LatestBuild.Agents()[0].Status != coder.AgentConnected {
			t.Errorf("workspace %s on the server: %v, agents %+v", ws.Name, err, w.LatestBuild.Agents())
		}
	}
	if err := prov.Cleanup(ctx); err != nil {
		t.Errorf("cleanup: %v", err)
	}
	if left := leftovers(t, c, "scaletest-"); len(left) > 0 {
		t.Errorf("left after cleanup: %v", left)
	}
}

// exhaust sends GET requests to each path (as the owner, without the
// bypass header) until coderd answers 429 a few times, at most 2000 each,
// and returns how many 429s it saw.
func exhaust(ctx context.Context, base, token string, paths ...string) (int, error) {
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer hc.CloseIdleConnections()
	total := 0
	for _, path := range paths {
		var mu sync.Mutex
		sent, limited := 0, 0
		var firstErr error
		var wg sync.WaitGroup
		for w := 0; w < 16; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					mu.Lock()
					if sent >= 2000 || limited >= 16 || firstErr != nil {
						mu.Unlock()
						return
					}
					sent++
					mu.Unlock()
					req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
					if err != nil {
						mu.Lock()
						firstErr = err
						mu.Unlock()
						return
					}
					req.Header.Set(coder.SessionTokenHeader, token)
					resp, err := hc.Do(req)
					mu.Lock()
					switch {
					case err != nil:
						firstErr = err
					case resp.StatusCode == http.StatusTooManyRequests:
						limited++
					case resp.StatusCode != http.StatusOK:
						firstErr = errors.New(path + ": " + resp.Status)
					}
					mu.Unlock()
					if resp != nil {
						resp.Body.Close()
					}
				}
			}()
		}
		wg.Wait()
		if firstErr != nil {
			return total, firstErr
		}
		total += limited
	}
	return total, nil
}
