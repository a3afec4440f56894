package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"

	"github.com/spf13/pflag"

	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/options"
)

// runFlags are the flags of `run` (and, for option flags, `inspect`).
type runFlags struct {
	fs *pflag.FlagSet

	vus, iterations          int64
	duration                 string
	stages, envs, tags, outs []string
	quiet, noSetup           bool
	noTeardown, noThresholds bool
	noSummary, throw, paused bool
	linger, verbose          bool
	includeSystemEnv         bool
	summaryExport            string
	summaryMode, config      string
	trendStats, timeUnit     string
	address, segment         string
	segmentSequence          string
	minIterationDuration     string
	systemTags, logFormat    string
	scriptType               string
	executionRequirements    bool
	http                     httpFlags
}

// httpFlags are k6/http's option flags.
type httpFlags struct {
	userAgent             string
	insecureSkipTLSVerify bool
	batch, batchPerHost   int64
	maxRedirects          int64
	noConnectionReuse     bool
	noVUConnectionReuse   bool
	discardResponseBodies bool
}

// define adds the k6/http option flags to fs.
func (h *httpFlags) define(fs *pflag.FlagSet) {
	fs.StringVar(&h.userAgent, "user-agent", "", "User-Agent header of k6/http requests (empty: none)")
	fs.BoolVar(&h.insecureSkipTLSVerify, "insecure-skip-tls-verify", false, "do not verify the TLS certificates of k6/http requests")
	fs.Int64Var(&h.batch, "batch", 20, "most parallel requests of one http.batch() call")
	fs.Int64Var(&h.batchPerHost, "batch-per-host", 6, "most parallel requests per host of one http.batch() call")
	fs.Int64Var(&h.maxRedirects, "max-redirects", 10, "most HTTP redirects followed")
	fs.BoolVar(&h.noConnectionReuse, "no-connection-reuse", false, "do not reuse TCP connections between requests")
	fs.BoolVar(&h.noVUConnectionReuse, "no-vu-connection-reuse", false, "do not reuse TCP connections between iterations of a VU")
	fs.BoolVar(&h.discardResponseBodies, "discard-response-bodies", false, "read and discard response bodies (res.body is null)")
}

// apply sets in o the k6/http options given on the command line.
func (h *httpFlags) apply(fs *pflag.FlagSet, o *options.Options) {
	if fs.Changed("user-agent") {
		o.UserAgent = options.Str(h.userAgent)
	}
	if fs.Changed("insecure-skip-tls-verify") {
		o.InsecureSkipTLSVerify = options.Bool(h.insecureSkipTLSVerify)
	}
	if fs.Changed("batch") {
		o.Batch = options.Int64(h.batch)
	}
	if fs.Changed("batch-per-host") {
		o.BatchPerHost = options.Int64(h.batchPerHost)
	}
	if fs.Changed("max-redirects") {
		o.MaxRedirects = options.Int64(h.maxRedirects)
	}
	if fs.Changed("no-connection-reuse") {
		o.NoConnectionReuse = options.Bool(h.noConnectionReuse)
	}
	if fs.Changed("no-vu-connection-reuse") {
		o.NoVUConnectionReuse = options.Bool(h.noVUConnectionReuse)
	}
	if fs.Changed("discard-response-bodies") {
		o.DiscardResponseBodies = options.Bool(h.discardResponseBodies)
	}
}

func newRunFlags(cmd string) *runFlags {
	f := &runFlags{fs: pflag.NewFlagSet(cmd, pflag.ContinueOnError)}
	fs := f.fs
	fs.SortFlags = false
	fs.Int64VarP(&f.vus, "vus", "u", 1, "number of virtual users")
	fs.StringVarP(&f.duration, "duration", "d", "", "test duration, e.g. 30s or 1m (constant-vus)")
	fs.Int64VarP(&f.iterations, "iterations", "i", 0, "total iterations, shared among the VUs")
	fs.StringArrayVarP(&f.stages, "stage", "s", nil, "ramping stage DURATION:TARGET (repeatable)")
	fs.StringVar(&f.segment, "execution-segment", "", "the part of the test this instance runs, e.g. 0:1/4")
	fs.StringVar(&f.segmentSequence, "execution-segment-sequence", "", "all segments of the test, e.g. 0,1/4,1/2,3/4,1")
	fs.BoolVarP(&f.paused, "paused", "p", false, "wait to be resumed through the REST API before starting (needs --address)")
	fs.BoolVar(&f.noSetup, "no-setup", false, "do not run setup()")
	fs.BoolVar(&f.noTeardown, "no-teardown", false, "do not run teardown()")
	fs.StringVar(&f.minIterationDuration, "min-iteration-duration", "", "minimum duration of an iteration")
	fs.BoolVarP(&f.throw, "throw", "w", false, "throw errors on failed requests")
	fs.StringArrayVar(&f.tags, "tag", nil, "run tag NAME=VALUE added to every sample (repeatable)")
	fs.StringVar(&f.systemTags, "system-tags", "", "comma-separated system tags to enable")
	f.http.define(fs)
	fs.StringVar(&f.trendStats, "summary-trend-stats", "", "trend columns of the summary, e.g. avg,p(99)")
	fs.StringVar(&f.timeUnit, "summary-time-unit", "", "time unit of the summary: s, ms or us")
	fs.StringArrayVarP(&f.envs, "env", "e", nil, "environment variable NAME=VALUE for __ENV (repeatable)")
	fs.BoolVar(&f.includeSystemEnv, "include-system-env-vars", cmd == "run", "pass the system environment to __ENV")
	fs.BoolVar(&f.noThresholds, "no-thresholds", false, "do not evaluate thresholds")
	fs.StringVar(&f.summaryMode, "summary-mode", "compact", "end-of-test summary: compact, full or disabled")
	fs.BoolVar(&f.noSummary, "no-summary", false, "same as --summary-mode=disabled (k6 v1)")
	fs.StringVar(&f.summaryExport, "summary-export", "", "write the end-of-test summary as JSON to this file")
	fs.StringArrayVarP(&f.outs, "out", "o", nil, "result output TYPE[=ARG] (repeatable)")
	fs.BoolVarP(&f.linger, "linger", "l", false, "keep running after the test ends, until interrupted")
	fs.StringVarP(&f.config, "config", "c", "", "JSON config file (lowest precedence)")
	fs.StringVarP(&f.address, "address", "a", "", "serve the REST API (/v1/status) on HOST:PORT (also K6_ADDRESS; off by default)")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no banner and no progress")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "debug logs")
	fs.StringVar(&f.logFormat, "log-format", "", "log format (accepted for compatibility; logs are logfmt)")
	// Accepted for compatibility, without effect.
	fs.Bool("no-usage-report", false, "accepted for compatibility; cdeload never reports usage")
	fs.Bool("no-color", false, "accepted for compatibility")
	fs.String("compatibility-mode", "extended", "accepted for compatibility")
	fs.StringVarP(&f.scriptType, "type", "t", "", "test type: js or archive (default: detect a tar archive)")
	fs.String("console-output", "", "accepted for compatibility")
	if cmd == "inspect" {
		fs.BoolVar(&f.executionRequirements, "execution-requirements", false, "print the consolidated options, maxVUs and totalDuration")
	}
	return f
}

// cliOptions returns the options tier the flags set (only flags given on
// the command line count).
func (f *runFlags) cliOptions() (options.Options, error) {
	var o options.Options
	fs := f.fs
	bad := func(flag, value string, err error) error {
		return lib.Errorf(lib.ExitInvalidConfig, "flag --%s %q: %w", flag, value, err)
	}
	if fs.Changed("vus") {
		o.VUs = options.Int64(f.vus)
	}
	if fs.Changed("duration") {
		d, err := options.ParseDuration(f.duration)
		if err != nil {
			return o, bad("duration", f.duration, err)
		}
		o.Duration = options.Dur(d)
	}
	if fs.Changed("iterations") {
		o.Iterations = options.Int64(f.iterations)
	}
	if fs.Changed("stage") {
		o.Stages = []options.Stage{}
		for _, s := range f.stages {
			st, err := options.ParseStage(s)
			if err != nil {
				return o, bad("stage", s, err)
			}
			o.Stages = append(o.Stages, st)
		}
	}
	if fs.Changed("execution-segment") {
		o.ExecutionSegment = options.Str(f.segment)
	}
	if fs.Changed("execution-segment-sequence") {
		o.ExecutionSegmentSequence = options.Str(f.segmentSequence)
	}
	if fs.Changed("paused") {
		o.Paused = options.Bool(f.paused)
	}
	if fs.Changed("no-setup") {
		o.NoSetup = options.Bool(f.noSetup)
	}
	if fs.Changed("no-teardown") {
		o.NoTeardown = options.Bool(f.noTeardown)
	}
	if fs.Changed("min-iteration-duration") {
		d, err := options.ParseDuration(f.minIterationDuration)
		if err != nil {
			return o, bad("min-iteration-duration", f.minIterationDuration, err)
		}
		o.MinIterationDuration = options.Dur(d)
	}
	if fs.Changed("throw") {
		o.Throw = options.Bool(f.throw)
	}
	if fs.Changed("tag") {
		o.Tags = map[string]string{}
		for _, t := range f.tags {
			k, v, ok := strings.Cut(t, "=")
			if !ok || k == "" {
				return o, bad("tag", t, fmt.Errorf("expected NAME=VALUE"))
			}
			o.Tags[k] = v
		}
	}
	if fs.Changed("system-tags") {
		o.SystemTags = splitComma(f.systemTags)
	}
	if fs.Changed("summary-trend-stats") {
		o.SummaryTrendStats = splitComma(f.trendStats)
	}
	if fs.Changed("summary-time-unit") {
		o.SummaryTimeUnit = options.Str(f.timeUnit)
	}
	if fs.Changed("no-thresholds") {
		o.NoThresholds = options.Bool(f.noThresholds)
	}
	f.http.apply(fs, &o)
	// Reuse the value checks of the JSON form.
	b, err := json.Marshal(o)
	if err != nil {
		return o, err
	}
	if _, _, err := options.Parse(b); err != nil {
		return o, err
	}
	return o, nil
}

// scriptEnv builds __ENV: the system environment (unless excluded) and
// the -e values over it.
func (f *runFlags) scriptEnv(system map[string]string) (map[string]string, error) {
	env := map[string]string{}
	if f.includeSystemEnv {
		for k, v := range system {
			env[k] = v
		}
	}
	for _, kv := range f.envs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			return nil, lib.Errorf(lib.ExitInvalidConfig, "flag --env %q: expected NAME=VALUE", kv)
		}
		if !options.ValidEnvName(k) {
			return nil, lib.Errorf(lib.ExitInvalidConfig, "flag --env %q: invalid name %q, it must match ^[a-zA-Z_][a-zA-Z0-9_]*$", kv, k)
		}
		env[k] = v
	}
	return env, nil
}

// summaryModeValue returns the summary mode after --no-summary and
// K6_SUMMARY_MODE, validated.
func (f *runFlags) summaryModeValue(env map[string]string) (string, error) {
	mode := f.summaryMode
	if !f.fs.Changed("summary-mode") {
		if v, ok := env["K6_SUMMARY_MODE"]; ok {
			mode = v
		}
	}
	if f.noSummary {
		mode = "disabled"
	}
	switch mode {
	case "compact", "full", "disabled":
		return mode, nil
	case "legacy":
		return "", lib.Errorf(lib.ExitInvalidConfig, "--summary-mode legacy was removed in k6 v2; use compact, full or disabled")
	}
	return "", lib.Errorf(lib.ExitInvalidConfig, "--summary-mode %q is invalid: use compact, full or disabled", mode)
}

// outputs returns the -o values, or K6_OUT's when no -o was given.
func (f *runFlags) outputs(env map[string]string, fromConfig []string) []string {
	if len(f.outs) > 0 {
		return f.outs
	}
	if v := env["K6_OUT"]; v != "" {
		return []string{v}
	}
	return fromConfig
}

func splitComma(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// configFile is the -c JSON file: options plus the run settings k6 keeps
// there.
type configFile struct {
	Options    options.Options
	Out        []string
	Collectors map[string]json.RawMessage
	Warnings   []string
}

func loadConfigFile(path string) (*configFile, error) {
	cf := &configFile{}
	if path == "" {
		return cf, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, lib.Errorf(lib.ExitInvalidConfig, "reading config file: %w", err)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, lib.Errorf(lib.ExitInvalidConfig, "config file %s: not a JSON object: %w", path, err)
	}
	if v, ok := raw["out"]; ok {
		var one string
		if json.Unmarshal(v, &one) == nil {
			cf.Out = []string{one}
		} else if err := json.Unmarshal(v, &cf.Out); err != nil {
			return nil, lib.Errorf(lib.ExitInvalidConfig, "config file %s: \"out\" must be a string or an array of strings", path)
		}
		delete(raw, "out")
	}
	if v, ok := raw["collectors"]; ok {
		if err := json.Unmarshal(v, &cf.Collectors); err != nil {
			return nil, lib.Errorf(lib.ExitInvalidConfig, "config file %s: \"collectors\" must be an object", path)
		}
		delete(raw, "collectors")
	}
	rest, _ := json.Marshal(raw)
	o, warns, err := options.Parse(rest)
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	cf.Options, cf.Warnings = o, warns
	return cf, nil
}

func goVersion() string { return runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH }
