package metrics

// Builtin holds the metrics every run emits, registered once per run.
type Builtin struct {
	VUs               *Metric
	VUsMax            *Metric
	Iterations        *Metric
	IterationDuration *Metric
	DroppedIterations *Metric
	Checks            *Metric
	GroupDuration     *Metric
	DataSent          *Metric
	DataReceived      *Metric
}

// RegisterBuiltin registers k6's built-in metrics in r.
func RegisterBuiltin(r *Registry) *Builtin {
	return &Builtin{
		VUs:               r.MustNewMetric("vus", Gauge),
		VUsMax:            r.MustNewMetric("vus_max", Gauge),
		Iterations:        r.MustNewMetric("iterations", Counter),
		IterationDuration: r.MustNewMetric("iteration_duration", Trend, Time),
		DroppedIterations: r.MustNewMetric("dropped_iterations", Counter),
		Checks:            r.MustNewMetric("checks", Rate),
		GroupDuration:     r.MustNewMetric("group_duration", Trend, Time),
		DataSent:          r.MustNewMetric("data_sent", Counter, Data),
		DataReceived:      r.MustNewMetric("data_received", Counter, Data),
	}
}
