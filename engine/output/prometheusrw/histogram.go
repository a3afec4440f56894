package prometheusrw

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/cdeload/cdeload/engine/metrics"
)

// Native histogram parameters. k6 asks for a bucket growth factor of 1.1;
// schema 3 (factor 2^(2^-3) ≈ 1.0905) is the largest Prometheus schema
// whose factor does not exceed it.
const (
	nativeSchema = 3
	// nativeSubBuckets is the number of buckets per power of two, 2^schema.
	nativeSubBuckets = 1 << nativeSchema
	// nativeZeroThreshold is the zero bucket's half-width, as in the
	// Prometheus Go client's default: a value v with |v| <= 2^-128 is
	// counted in the zero bucket. It bounds the bucket index range to
	// about [-1024, 8192].
	nativeZeroThreshold = 0x1p-128
)

// nativeBounds[j] is 2^(j/8 - 1): the upper bounds, within one power of
// two, of the fractions returned by math.Frexp (in [0.5, 1)).
var nativeBounds = func() [nativeSubBuckets + 1]float64 {
	var b [nativeSubBuckets + 1]float64
	for j := range b {
		b[j] = math.Exp2(float64(j)/nativeSubBuckets - 1)
	}
	return b
}()

// nativeBucketIndex returns the schema-3 bucket index of a positive finite
// magnitude v: the bucket i holds the values in (2^((i-1)/8), 2^(i/8)], so
// powers of two fall on upper bounds (1 → 0, 2 → 8, 0.5 → -8).
func nativeBucketIndex(v float64) int32 {
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	j := 0
	for j < nativeSubBuckets && frac > nativeBounds[j] {
		j++
	}
	return int32(exp-1)*nativeSubBuckets + int32(j)
}

// nativeBuckets is a dense run of bucket counts: counts[k] is bucket
// first+k.
type nativeBuckets struct {
	first  int32
	counts []uint64
}

func (b *nativeBuckets) inc(i int32) {
	switch {
	case len(b.counts) == 0:
		b.first = i
		b.counts = append(b.counts, 0)
	case i < b.first:
		grow := int(b.first - i)
		b.counts = append(make([]uint64, grow, grow+len(b.counts)), b.counts...)
		b.first = i
	case int(i-b.first) >= len(b.counts):
		b.counts = append(b.counts, make([]uint64, int(i-b.first)-len(b.counts)+1)...)
	}
	b.counts[i-b.first]++
}

// nativeHist is a cumulative Prometheus native histogram with integer
// counts (schema 3). Positive values go to positive buckets, negative
// values symmetrically to negative buckets (by magnitude), |v| <=
// nativeZeroThreshold to the zero bucket. Non-finite values must be
// filtered out by the caller.
type nativeHist struct {
	count, zero uint64
	sum         float64
	pos, neg    nativeBuckets
}

// add counts one value.
func (h *nativeHist) add(v float64) {
	h.count++
	h.sum += v
	switch {
	case v > nativeZeroThreshold:
		h.pos.inc(nativeBucketIndex(v))
	case v < -nativeZeroThreshold:
		h.neg.inc(nativeBucketIndex(-v))
	default:
		h.zero++
	}
}

// Protobuf field numbers of prompb (remote write 1.0) for native histograms:
//
//	TimeSeries { repeated Histogram histograms = 4; }
//	Histogram  { uint64 count_int = 1; double sum = 3; sint32 schema = 4;
//	             double zero_threshold = 5; uint64 zero_count_int = 6;
//	             repeated BucketSpan negative_spans = 8; repeated sint64 negative_deltas = 9;
//	             repeated BucketSpan positive_spans = 11; repeated sint64 positive_deltas = 12;
//	             ResetHint reset_hint = 14; int64 timestamp = 15; }
//	BucketSpan { sint32 offset = 1; uint32 length = 2; }
const (
	fieldTimeSeriesHistograms = 4
	fieldHistCountInt         = 1
	fieldHistSum              = 3
	fieldHistSchema           = 4
	fieldHistZeroThreshold    = 5
	fieldHistZeroCountInt     = 6
	fieldHistNegativeSpans    = 8
	fieldHistNegativeDeltas   = 9
	fieldHistPositiveSpans    = 11
	fieldHistPositiveDeltas   = 12
	fieldHistResetHint        = 14
	fieldHistTimestamp        = 15
	fieldSpanOffset           = 1
	fieldSpanLength           = 2
)

// Histogram.ResetHint values.
const (
	resetHintUnknown = 0
	resetHintNo      = 2
)

// maxSpanGap is the longest run of empty buckets encoded inside a span
// (as zero deltas) rather than by starting a new span.
const maxSpanGap = 2

// appendBuckets appends the spans field and the packed deltas field of b.
func appendBuckets(out []byte, b *nativeBuckets, spansField, deltasField protowire.Number) []byte {
	counts := b.counts
	// Trim empty buckets at both ends (there are none today, but keep the
	// encoding valid for any state).
	lo, hi := 0, len(counts)
	for lo < hi && counts[lo] == 0 {
		lo++
	}
	for hi > lo && counts[hi-1] == 0 {
		hi--
	}
	if lo == hi {
		return out
	}
	var deltas []byte
	prev := uint64(0)
	spanStart := lo     // index in counts of the current span's first bucket
	prevEnd := int32(0) // absolute index after the previous span
	firstSpan := true
	emitSpan := func(start, end int) { // counts[start:end]
		abs := b.first + int32(start)
		offset := abs
		if !firstSpan {
			offset = abs - prevEnd
		}
		firstSpan = false
		prevEnd = b.first + int32(end)
		size := protowire.SizeTag(fieldSpanOffset) + protowire.SizeVarint(protowire.EncodeZigZag(int64(offset))) +
			protowire.SizeTag(fieldSpanLength) + protowire.SizeVarint(uint64(end-start))
		out = protowire.AppendTag(out, spansField, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(size))
		out = protowire.AppendTag(out, fieldSpanOffset, protowire.VarintType)
		out = protowire.AppendVarint(out, protowire.EncodeZigZag(int64(offset)))
		out = protowire.AppendTag(out, fieldSpanLength, protowire.VarintType)
		out = protowire.AppendVarint(out, uint64(end-start))
		for _, c := range counts[start:end] {
			deltas = protowire.AppendVarint(deltas, protowire.EncodeZigZag(int64(c)-int64(prev)))
			prev = c
		}
	}
	i := lo
	for i < hi {
		if counts[i] != 0 {
			i++
			continue
		}
		gapEnd := i
		for counts[gapEnd] == 0 { // hi-1 is non-zero, so this stops
			gapEnd++
		}
		if gapEnd-i > maxSpanGap {
			emitSpan(spanStart, i)
			spanStart = gapEnd
		}
		i = gapEnd
	}
	emitSpan(spanStart, hi)
	out = protowire.AppendTag(out, deltasField, protowire.BytesType)
	out = protowire.AppendBytes(out, deltas)
	return out
}

// appendHistogram encodes h as a Histogram message body.
func appendHistogram(out []byte, h *nativeHist, resetHint uint64, tsMs int64) []byte {
	out = protowire.AppendTag(out, fieldHistCountInt, protowire.VarintType)
	out = protowire.AppendVarint(out, h.count)
	out = protowire.AppendTag(out, fieldHistSum, protowire.Fixed64Type)
	out = protowire.AppendFixed64(out, math.Float64bits(h.sum))
	out = protowire.AppendTag(out, fieldHistSchema, protowire.VarintType)
	out = protowire.AppendVarint(out, protowire.EncodeZigZag(nativeSchema))
	out = protowire.AppendTag(out, fieldHistZeroThreshold, protowire.Fixed64Type)
	out = protowire.AppendFixed64(out, math.Float64bits(nativeZeroThreshold))
	out = protowire.AppendTag(out, fieldHistZeroCountInt, protowire.VarintType)
	out = protowire.AppendVarint(out, h.zero)
	out = appendBuckets(out, &h.neg, fieldHistNegativeSpans, fieldHistNegativeDeltas)
	out = appendBuckets(out, &h.pos, fieldHistPositiveSpans, fieldHistPositiveDeltas)
	if resetHint != resetHintUnknown {
		out = protowire.AppendTag(out, fieldHistResetHint, protowire.VarintType)
		out = protowire.AppendVarint(out, resetHint)
	}
	out = protowire.AppendTag(out, fieldHistTimestamp, protowire.VarintType)
	out = protowire.AppendVarint(out, uint64(tsMs))
	return out
}

// appendHistogramTimeSeries appends one WriteRequest.timeseries entry
// holding the pre-encoded labels and one native histogram. scratch is a
// reusable buffer for the histogram body; the grown buffer is returned.
func appendHistogramTimeSeries(b, scratch, labels []byte, h *nativeHist, resetHint uint64, tsMs int64) ([]byte, []byte) {
	scratch = appendHistogram(scratch[:0], h, resetHint, tsMs)
	tsSize := len(labels) + protowire.SizeTag(fieldTimeSeriesHistograms) + protowire.SizeBytes(len(scratch))
	b = protowire.AppendTag(b, fieldWriteRequestTimeseries, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(tsSize))
	b = append(b, labels...)
	b = protowire.AppendTag(b, fieldTimeSeriesHistograms, protowire.BytesType)
	b = protowire.AppendBytes(b, scratch)
	return b, scratch
}

// nativeSuffix is the name suffix of a trend's native histogram series:
// _seconds for time trends (values in seconds), _bytes for data trends.
func nativeSuffix(vt metrics.ValueType) string {
	switch vt {
	case metrics.Time:
		return "_seconds"
	case metrics.Data:
		return "_bytes"
	}
	return ""
}
