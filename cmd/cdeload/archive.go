package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/cdeload/cdeload/engine/archive"
	"github.com/cdeload/cdeload/engine/js"
	"github.com/cdeload/cdeload/engine/lib"
)

// testSource is what `run`, `inspect` and `archive` load: a script file,
// stdin, or an archive whose files are the only ones the test may read.
type testSource struct {
	// filename is the entry script's absolute path.
	filename string
	// data is the entry script's text; nil means read filename.
	data []byte
	// arc is the archive, nil for a plain script.
	arc *archive.Archive
}

// openSource reads path ("-" for stdin) as the --type says: "js",
// "archive", or "" to detect an archive by its .tar extension or its tar
// header.
func openSource(s *stdio, path, typ string) (*testSource, error) {
	switch typ {
	case "", "js", "archive":
	default:
		return nil, fmt.Errorf("flag --type %q: unknown test type, use js or archive", typ)
	}
	var head []byte
	if path == "-" {
		b, err := io.ReadAll(s.in)
		if err != nil {
			return nil, fmt.Errorf("reading the test from stdin: %w", err)
		}
		head = b
	} else if typ == "" && !strings.HasSuffix(path, ".tar") {
		// An unreadable file is left to the script loader, which reports
		// it like any missing module.
		head, _ = readHead(path, 512)
	}
	isArchive := typ == "archive" || (typ == "" && (strings.HasSuffix(path, ".tar") || archive.Sniff(head)))
	if isArchive {
		var a *archive.Archive
		var err error
		if path == "-" {
			a, err = archive.Read(bytes.NewReader(head))
		} else {
			a, err = archive.ReadFile(path)
		}
		if err != nil {
			return nil, lib.WithExitCode(lib.ExitScriptException, err)
		}
		return &testSource{filename: a.Filename, data: a.Data, arc: a}, nil
	}
	if path == "-" {
		return &testSource{filename: js.StdinFilename, data: head}, nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("script path %s: %w", path, err)
	}
	return &testSource{filename: abs}, nil
}

func readHead(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, n)
	m, err := io.ReadFull(f, b)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return nil, err
	}
	return b[:m], nil
}

// jsConfig fills the script location of a js.Config.
func (t *testSource) jsConfig(cfg *js.Config) {
	cfg.Filename, cfg.Source = t.filename, t.data
	if t.arc != nil {
		cfg.Files, cfg.Pwd = t.arc.Files, t.arc.Pwd
	}
}

// env is __ENV: an archive's env under the run's own (the run's -e and
// system variables win).
func (t *testSource) env(runEnv map[string]string) map[string]string {
	if t.arc == nil {
		return runEnv
	}
	env := make(map[string]string, len(t.arc.Env)+len(runEnv))
	for k, v := range t.arc.Env {
		env[k] = v
	}
	for k, v := range runEnv {
		env[k] = v
	}
	return env
}

// options is the script tier of the options: the archive's options, or
// the script's exported ones.
func (t *testSource) options(script *js.Script) json.RawMessage {
	if t.arc != nil {
		return archiveOptions(t.arc.Options)
	}
	return script.Options()
}

// archiveOptions returns o without the execution shortcuts (vus,
// duration, iterations, stages) when it has scenarios: consolidated
// options carry both, and in one tier they would conflict.
func archiveOptions(o json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if len(o) == 0 || json.Unmarshal(o, &m) != nil {
		return o
	}
	if _, ok := m["scenarios"]; !ok {
		return o
	}
	for _, k := range []string{"vus", "duration", "iterations", "stages"} {
		delete(m, k)
	}
	b, err := json.Marshal(m)
	if err != nil {
		return o
	}
	return b
}

// archiveCommand is `archive SCRIPT [run option flags] [-O PATH]
// [--exclude-env-vars]`: it runs VU 0 and writes a tar in k6's layout with
// the consolidated options, the -e variables and every file VU 0 read.
func archiveCommand(ctx context.Context, s *stdio, args []string) int {
	f := newRunFlags("archive")
	out := f.fs.StringP("archive-out", "O", "archive.tar", "path of the archive to write")
	excludeEnv := f.fs.Bool("exclude-env-vars", false, "do not store the -e environment variables in the archive")
	if code, done := parseFlags(s, f, args, "archive [flags] script.js"); done {
		return code
	}
	log := newLogger(s.errOut, f.verbose)
	for _, name := range []string{"out", "linger"} {
		if f.fs.Changed(name) {
			fmt.Fprintf(s.errOut, "unknown flag: --%s (archive does not accept --out/-o or --linger/-l)\n", name)
			return int(lib.ExitUnknown)
		}
	}
	p, err := parseScript(ctx, s, f, log)
	if err != nil {
		return fail(log, err)
	}
	src, env, script := p.src, p.env, p.script
	opts, err := mergeOptions(log, f, p.config, src.options(script), s.env)
	if err != nil {
		return fail(log, err)
	}
	files := script.Files()
	data := files[script.Filename()]
	if data == nil {
		data = src.data
	}
	wd, err := os.Getwd()
	if err != nil {
		return fail(log, fmt.Errorf("archive: working directory: %w", err))
	}
	if src.arc != nil && src.arc.Pwd != "" {
		wd = src.arc.Pwd
	}
	if *excludeEnv {
		env = map[string]string{}
	}
	a := &archive.Archive{
		Type: "js", Options: archiveOptions(opts.JSON()), Filename: script.Filename(), Pwd: wd, Env: env,
		CompatibilityMode: "extended", K6Version: version, Goos: runtime.GOOS, Data: data, Files: files,
	}
	if err := archive.WriteFile(*out, a); err != nil {
		return fail(log, err)
	}
	return 0
}
