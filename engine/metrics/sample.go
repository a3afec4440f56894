package metrics

import (
	"context"
	"time"
)

// Sample is one measured value of a metric at a point in time. Tags are
// indexed (they make time series and Prometheus labels); Metadata holds
// high-cardinality values (vu, iter, workspace names) that are never indexed.
type Sample struct {
	Metric   *Metric
	Tags     *TagSet
	Time     time.Time
	Value    float64
	Metadata map[string]string
}

// Samples is a batch of samples sent together through a sample channel.
type Samples []Sample

// PushIfNotDone sends samples on ch unless ctx is done first. It reports
// whether the samples were sent.
func PushIfNotDone(ctx context.Context, ch chan<- Samples, samples ...Sample) bool {
	if len(samples) == 0 {
		return true
	}
	select {
	case <-ctx.Done():
		return false
	default:
	}
	select {
	case <-ctx.Done():
		return false
	case ch <- Samples(samples):
		return true
	}
}

// D converts a duration to the float milliseconds that Time metrics hold.
func D(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// B converts a boolean to the 1 or 0 that Rate metrics hold.
func B(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
