package syncbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/cdeload/cdeload/internal/syncbuf"
)

func TestConcurrentWritesAllArrive(t *testing.T) {
	var b syncbuf.Buffer
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				fmt.Fprintf(&b, "w%d-%d\n", i, j)
				_ = b.String()
			}
		}()
	}
	wg.Wait()
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 800 {
		t.Fatalf("got %d lines, want 800", len(lines))
	}
	if !strings.Contains(b.String(), "w7-99\n") {
		t.Errorf("missing the last write of writer 7")
	}
}
