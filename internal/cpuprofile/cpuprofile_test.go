package cpuprofile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStartFromEnvRejectsBadWindow(t *testing.T) {
	for _, spec := range []string{"p@", "p@5s", "p@x+1s", "p@1s+0s", "p@-1s+1s"} {
		t.Setenv(EnvVar, filepath.Join(t.TempDir(), spec))
		if _, err := StartFromEnv(); err == nil || !strings.Contains(err.Error(), EnvVar) {
			t.Errorf("%s=%q: error %v, want one naming %s", EnvVar, spec, err, EnvVar)
		}
	}
}

func TestStartFromEnvWritesWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.pprof")
	t.Setenv(EnvVar, path+"@10ms+200ms")
	stop, err := StartFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(300 * time.Millisecond)
	for time.Now().Before(deadline) { // some CPU to sample
	}
	stop()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 {
		t.Errorf("%s is empty, want a CPU profile", path)
	}
}

func TestStartFromEnvUnset(t *testing.T) {
	t.Setenv(EnvVar, "")
	stop, err := StartFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	stop()
}

func TestStartFromEnvWritesTraceWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "trace.out")
	t.Setenv(EnvVar, "")
	t.Setenv(TraceEnvVar, path+"@10ms+100ms")
	stop, err := StartFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// An execution trace starts with its magic header.
	if !strings.HasPrefix(string(b), "go 1.") {
		t.Errorf("%s starts with %q, want an execution trace header", path, b[:min(len(b), 16)])
	}
}

func TestStartFromEnvRejectsBadTraceWindow(t *testing.T) {
	t.Setenv(EnvVar, "")
	t.Setenv(TraceEnvVar, filepath.Join(t.TempDir(), "t@1s"))
	if _, err := StartFromEnv(); err == nil || !strings.Contains(err.Error(), TraceEnvVar) {
		t.Errorf("error %v, want one naming %s", err, TraceEnvVar)
	}
}

func TestStartFromEnvWritesAllocWindow(t *testing.T) {
	path := filepath.Join(t.TempDir(), "allocs.pprof")
	t.Setenv(EnvVar, "")
	t.Setenv(TraceEnvVar, "")
	t.Setenv(AllocEnvVar, path+"@10ms+100ms")
	stop, err := StartFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	stop()
	for _, p := range []string{path + ".start", path} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() == 0 {
			t.Errorf("%s is empty, want a heap profile", p)
		}
	}
}
