package prometheusrw

import (
	"math"

	"google.golang.org/protobuf/encoding/protowire"
)

// Protobuf field numbers of Prometheus remote-write 1.0 (prompb):
//
//	WriteRequest { repeated TimeSeries timeseries = 1; }
//	TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//	Label        { string name = 1; string value = 2; }
//	Sample       { double value = 1; int64 timestamp = 2; }  // ms
const (
	fieldWriteRequestTimeseries = 1
	fieldTimeSeriesLabels       = 1
	fieldTimeSeriesSamples      = 2
	fieldLabelName              = 1
	fieldLabelValue             = 2
	fieldSampleValue            = 1
	fieldSampleTimestamp        = 2
)

// encodeLabels encodes labels as the repeated Label fields of a TimeSeries.
func encodeLabels(labels []label) []byte {
	var b []byte
	for _, l := range labels {
		size := protowire.SizeTag(fieldLabelName) + protowire.SizeBytes(len(l.name)) +
			protowire.SizeTag(fieldLabelValue) + protowire.SizeBytes(len(l.value))
		b = protowire.AppendTag(b, fieldTimeSeriesLabels, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(size))
		b = protowire.AppendTag(b, fieldLabelName, protowire.BytesType)
		b = protowire.AppendString(b, l.name)
		b = protowire.AppendTag(b, fieldLabelValue, protowire.BytesType)
		b = protowire.AppendString(b, l.value)
	}
	return b
}

// appendTimeSeries appends one WriteRequest.timeseries entry holding the
// pre-encoded labels and one sample.
func appendTimeSeries(b, labels []byte, value float64, tsMs int64) []byte {
	sampleSize := protowire.SizeTag(fieldSampleValue) + protowire.SizeFixed64() +
		protowire.SizeTag(fieldSampleTimestamp) + protowire.SizeVarint(uint64(tsMs))
	tsSize := len(labels) + protowire.SizeTag(fieldTimeSeriesSamples) + protowire.SizeBytes(sampleSize)
	b = protowire.AppendTag(b, fieldWriteRequestTimeseries, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(tsSize))
	b = append(b, labels...)
	b = protowire.AppendTag(b, fieldTimeSeriesSamples, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(sampleSize))
	b = protowire.AppendTag(b, fieldSampleValue, protowire.Fixed64Type)
	b = protowire.AppendFixed64(b, math.Float64bits(value))
	b = protowire.AppendTag(b, fieldSampleTimestamp, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(tsMs))
	return b
}
