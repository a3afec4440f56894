package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// A standalone lab returns its garbage to the OS after every trimBudget
// bytes of allocation, checked every trimInterval (see memtrim.go): a
// collection costs the lab ~0.1-0.3 s of CPU with 500 workspaces (their
// goroutine stacks), so at most one per interval; under 3000 echo frames/s
// the garbage between two is 50-150 MB.
const (
	trimInterval = 10 * time.Second
	trimBudget   = 64 << 20
)

// ServeOptions are the extra settings of [Serve].
type ServeOptions struct {
	// KeyFile is where the SSH client private key is written (mode 0600).
	// Empty means a file in a fresh temporary directory, removed on exit.
	KeyFile string
	// Ready, if set, is called with the running lab after the banner is
	// printed.
	Ready func(*Lab)
	// EnvFile, if set, receives the shell exports once the lab serves,
	// written atomically (a temporary file renamed into place), so a
	// script can wait for the file and source it; it is removed on exit.
	EnvFile string
}

// Serve starts a lab, prints shell exports (TS_CONTROL_URL, TS_AUTHKEY,
// CDELOAD_LAB_URL, CDELOAD_LAB_TOKEN, CDELOAD_SSH_USER, CDELOAD_SSH_KEY and, with the Coder
// simulator, CODER_URL and CODER_SESSION_TOKEN) and the workspaces to out,
// and runs until ctx ends; then it stops everything, every workspace
// included.
func Serve(ctx context.Context, cfg Config, opts ServeOptions, out io.Writer) (err error) {
	l, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := l.Close(); err == nil && cerr != nil {
			err = cerr
		}
	}()
	keyFile := opts.KeyFile
	if keyFile == "" {
		dir, err := os.MkdirTemp("", "cdeload-lab-")
		if err != nil {
			return fmt.Errorf("lab: create key directory: %w", err)
		}
		defer os.RemoveAll(dir)
		keyFile = filepath.Join(dir, "id_ed25519")
	}
	if err := os.WriteFile(keyFile, l.Credentials().PrivateKeyPEM, 0o600); err != nil {
		return fmt.Errorf("lab: write SSH key: %w", err)
	}
	c := l.Credentials()
	exports := shellExports(l, keyFile)
	if _, err := out.Write(exports); err != nil {
		return fmt.Errorf("lab: print exports: %w", err)
	}
	if l.Coder() != nil {
		fmt.Fprintf(out, "# Coder admin: %s / %s (template \"kubernetes\")\n", l.Coder().AdminEmail, l.Coder().AdminPassword)
	}
	fmt.Fprintf(out, "# workspace host key: %s\n", c.HostKeyLine())
	for _, ws := range l.Workspaces.List() {
		fmt.Fprintf(out, "# workspace %s %s\n", ws.Name(), ws.SSHAddr())
	}
	fmt.Fprintf(out, "# start more: curl -X POST -d '{\"name\":\"ws-x\"}' %s/lab/v1/workspaces\n", l.URL())
	if opts.EnvFile != "" {
		if err := writeFileAtomic(opts.EnvFile, exports); err != nil {
			return fmt.Errorf("lab: --env-file: %w", err)
		}
		defer os.Remove(opts.EnvFile)
		fmt.Fprintf(out, "# exports written to %s\n", opts.EnvFile)
	}
	fmt.Fprintln(out, "# serving; interrupt to stop")
	trimCtx, stopTrim := context.WithCancel(ctx)
	trimDone := make(chan struct{})
	go func() {
		defer close(trimDone)
		trimMemory(trimCtx, trimInterval, trimBudget)
	}()
	defer func() {
		stopTrim()
		<-trimDone
	}()
	if opts.Ready != nil {
		opts.Ready(l)
	}
	<-ctx.Done()
	return nil
}

// shellExports are the export lines of the lab's settings, for eval or
// source.
func shellExports(l *Lab, keyFile string) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "export TS_CONTROL_URL=%s\n", l.ControlURL())
	fmt.Fprintf(&b, "export TS_AUTHKEY=%s\n", l.AuthKey())
	fmt.Fprintf(&b, "export CDELOAD_LAB_URL=%s\n", l.URL())
	fmt.Fprintf(&b, "export CDELOAD_LAB_TOKEN=%s\n", l.Token())
	fmt.Fprintf(&b, "export CDELOAD_SSH_USER=%s\n", l.Credentials().User)
	fmt.Fprintf(&b, "export CDELOAD_SSH_KEY=%s\n", keyFile)
	if l.Coder() != nil {
		fmt.Fprintf(&b, "export CODER_URL=%s\n", l.CoderURL())
		fmt.Fprintf(&b, "export CODER_SESSION_TOKEN=%s\n", l.CoderToken())
	}
	if ns := l.KubernetesNamespace(); ns != "" {
		fmt.Fprintf(&b, "export CDELOAD_K8S_NAMESPACE=%s\n", ns)
	}
	return b.Bytes()
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory renamed into place, so a reader sees nothing or all of it.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
