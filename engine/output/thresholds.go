package output

// WithThresholds is implemented by outputs that record the run's
// thresholds (the json output writes them in its "Metric" lines). The
// engine calls SetThresholds once, before Start, with options.thresholds:
// key = metric name or submetric key ("metric{tag:value}"), value = the
// threshold expressions as written ("p(95)<200").
type WithThresholds interface {
	Output
	SetThresholds(thresholds map[string][]string)
}
