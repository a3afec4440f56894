package options

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cdeload/cdeload/engine/lib"
)

// FromEnv reads the K6_* environment variables that set options (K6_VUS,
// K6_DURATION, K6_ITERATIONS, K6_STAGES, K6_TAGS, …). A bad value is an
// error naming the variable, with exit code 104.
func FromEnv(env map[string]string) (Options, error) {
	var o Options
	keys := make([]string, 0, len(env))
	for k := range env {
		if strings.HasPrefix(k, "K6_") {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := env[k]
		var err error
		switch k {
		case "K6_VUS":
			o.VUs, err = envInt(v)
		case "K6_ITERATIONS":
			o.Iterations, err = envInt(v)
		case "K6_DURATION":
			o.Duration, err = envDur(v)
		case "K6_STAGES":
			o.Stages, err = ParseStages(v)
		case "K6_PAUSED":
			o.Paused, err = envBool(v)
		case "K6_NO_SETUP":
			o.NoSetup, err = envBool(v)
		case "K6_NO_TEARDOWN":
			o.NoTeardown, err = envBool(v)
		case "K6_THROW":
			o.Throw, err = envBool(v)
		case "K6_NO_THRESHOLDS":
			o.NoThresholds, err = envBool(v)
		case "K6_SETUP_TIMEOUT":
			o.SetupTimeout, err = envDur(v)
		case "K6_TEARDOWN_TIMEOUT":
			o.TeardownTimeout, err = envDur(v)
		case "K6_HANDLE_SUMMARY_TIMEOUT":
			o.HandleSummaryTimeout, err = envDur(v)
		case "K6_MIN_ITERATION_DURATION":
			o.MinIterationDuration, err = envDur(v)
		case "K6_TAGS":
			o.Tags, err = ParseTags(v)
		case "K6_SYSTEM_TAGS":
			o.SystemTags = splitList(v)
		case "K6_SUMMARY_TREND_STATS":
			o.SummaryTrendStats = splitList(v)
		case "K6_SUMMARY_TIME_UNIT":
			o.SummaryTimeUnit = Str(v)
		case "K6_EXECUTION_SEGMENT":
			o.ExecutionSegment = Str(v)
		case "K6_EXECUTION_SEGMENT_SEQUENCE":
			o.ExecutionSegmentSequence = Str(v)
		case "K6_USER_AGENT":
			o.UserAgent = Str(v)
		case "K6_INSECURE_SKIP_TLS_VERIFY":
			o.InsecureSkipTLSVerify, err = envBool(v)
		case "K6_BATCH":
			o.Batch, err = envInt(v)
		case "K6_BATCH_PER_HOST":
			o.BatchPerHost, err = envInt(v)
		case "K6_MAX_REDIRECTS":
			o.MaxRedirects, err = envInt(v)
		case "K6_NO_CONNECTION_REUSE":
			o.NoConnectionReuse, err = envBool(v)
		case "K6_NO_VU_CONNECTION_REUSE":
			o.NoVUConnectionReuse, err = envBool(v)
		case "K6_DISCARD_RESPONSE_BODIES":
			o.DiscardResponseBodies, err = envBool(v)
		default:
			continue
		}
		if err != nil {
			return Options{}, lib.Errorf(lib.ExitInvalidConfig, "environment variable %s=%q: %w", k, v, err)
		}
	}
	if err := o.validateValues(); err != nil {
		return Options{}, err
	}
	return o, nil
}

// ParseStages parses the comma-separated "DURATION:TARGET" list of
// K6_STAGES.
func ParseStages(s string) ([]Stage, error) {
	var out []Stage
	for _, p := range splitList(s) {
		st, err := ParseStage(p)
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	return out, nil
}

// ParseTags parses "k=v,k2=v2".
func ParseTags(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, p := range splitList(s) {
		k, v, err := parseKV(p)
		if err != nil {
			return nil, err
		}
		out[k] = v
	}
	return out, nil
}

// ValidEnvName reports whether name may be used with -e NAME=VALUE.
func ValidEnvName(name string) bool { return envNameRE.MatchString(name) }

func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func envInt(v string) (*int64, error) {
	i, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		return nil, fmt.Errorf("expected an integer")
	}
	return &i, nil
}

func envBool(v string) (*bool, error) {
	b, err := strconv.ParseBool(strings.TrimSpace(v))
	if err != nil {
		return nil, fmt.Errorf("expected true or false")
	}
	return &b, nil
}

func envDur(v string) (*Duration, error) {
	d, err := ParseDuration(v)
	if err != nil {
		return nil, err
	}
	return Dur(d), nil
}
