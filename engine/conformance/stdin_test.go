package conformance

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runStdin runs the binary in dir with stdin as its standard input.
func runStdin(t *testing.T, dir, stdin string, args ...string) *result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	err := cmd.Run()
	r := &result{stdout: stdout.String(), stderr: stderr.String(), took: time.Since(began)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running cdeload: %v", err)
	}
	return r
}

const stdinScript = `import { greet } from "./lib.js";
export default function () {
  throw new Error(greet());
}
`

// A script read from stdin is file:///- (as in k6), imports relative to the
// working directory, and keeps both in an archive run elsewhere.
func TestStdinScriptIsNamedFileDash(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "lib.js"), []byte(`export function greet() { return "hello from lib"; }`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const where = `at default (file:///-:3:`
	r := runStdin(t, dir, stdinScript, "run", "--iterations", "1", "-")
	if r.code != 0 || !strings.Contains(r.stderr, "hello from lib") || !strings.Contains(r.stderr, where) {
		t.Fatalf("want exit 0 and the exception %q located %q, got %s", "hello from lib", where, r)
	}

	r = runStdin(t, dir, stdinScript, "archive", "-O", "stdin.tar", "-")
	if r.code != 0 {
		t.Fatalf("archive -: %s", r)
	}
	tarPath := filepath.Join(dir, "stdin.tar")
	md := archiveMetadata(t, tarPath)
	if md["filename"] != "file:///-" || md["pwd"] != "file://"+dir+"/" {
		t.Fatalf("archive metadata: want filename file:///- and pwd file://%s/, got %v", dir, md)
	}
	other := t.TempDir()
	r = runStdin(t, other, "", "run", "--iterations", "1", tarPath)
	if r.code != 0 || !strings.Contains(r.stderr, "hello from lib") || !strings.Contains(r.stderr, where) {
		t.Fatalf("archive of a stdin script, run elsewhere: want exit 0 and %q at %q, got %s", "hello from lib", where, r)
	}
}

func archiveMetadata(t *testing.T, p string) map[string]any {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: no metadata.json: %v", p, err)
		}
		if h.Name != "metadata.json" {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		var md map[string]any
		if err := json.Unmarshal(b, &md); err != nil {
			t.Fatal(err)
		}
		return md
	}
}
