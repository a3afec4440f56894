package summary

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/cdeload/cdeload/engine/metrics"
)

// trimFloat formats v with at most prec decimals, truncating (not
// rounding) and dropping trailing zeros.
func trimFloat(v float64, prec int) string {
	mult := math.Pow(10, float64(prec))
	t := math.Trunc(v*mult+math.Copysign(1e-9, v)) / mult
	return strconv.FormatFloat(t, 'f', -1, 64)
}

// FormatDuration humanises a duration given in milliseconds. With unit ""
// it picks ns, µs, ms or s below a minute (at most 2 decimals) and
// "XmYs" / "XhYmZs" above; with unit "s", "ms" or "us" it always uses that
// unit with 2 decimals.
func FormatDuration(ms float64, unit string) string {
	switch unit {
	case "s":
		return strconv.FormatFloat(ms/1000, 'f', 2, 64) + "s"
	case "ms":
		return strconv.FormatFloat(ms, 'f', 2, 64) + "ms"
	case "us":
		return strconv.FormatFloat(ms*1000, 'f', 2, 64) + "µs"
	}
	if math.IsNaN(ms) || math.IsInf(ms, 0) {
		return strconv.FormatFloat(ms, 'f', -1, 64)
	}
	if ms < 0 {
		return "-" + FormatDuration(-ms, unit)
	}
	switch {
	case ms == 0:
		return "0s"
	case ms < 0.001:
		return strconv.FormatFloat(math.Trunc(ms*1e6), 'f', 0, 64) + "ns"
	case ms < 1:
		return trimFloat(ms*1000, 2) + "µs"
	case ms < 1000:
		return trimFloat(ms, 2) + "ms"
	case ms < 60000:
		return trimFloat(ms/1000, 2) + "s"
	}
	totalSec := math.Trunc(ms / 1000)
	sec := int64(totalSec) % 60
	mins := int64(totalSec) / 60
	if mins < 60 {
		return fmt.Sprintf("%dm%ds", mins, sec)
	}
	return fmt.Sprintf("%dh%dm%ds", mins/60, mins%60, sec)
}

var dataUnits = []string{"B", "kB", "MB", "GB", "TB", "PB", "EB"}

// FormatBytes humanises a byte count with SI (1000-based) units: "9.0 kB",
// "176 kB", "1.2 MB"; below 10 bytes the plain number.
func FormatBytes(b float64) string {
	if math.IsNaN(b) || math.IsInf(b, 0) {
		return strconv.FormatFloat(b, 'f', -1, 64) + " B"
	}
	if b < 0 {
		return "-" + FormatBytes(-b)
	}
	if b < 10 {
		return trimFloat(b, 2) + " B"
	}
	e := int(math.Floor(math.Log10(b) / 3))
	if e >= len(dataUnits) {
		e = len(dataUnits) - 1
	}
	v := math.Round(b/math.Pow(1000, float64(e))*10) / 10
	if v >= 1000 && e+1 < len(dataUnits) {
		e++
		v = math.Round(b/math.Pow(1000, float64(e))*10) / 10
	}
	if v < 10 {
		return strconv.FormatFloat(v, 'f', 1, 64) + " " + dataUnits[e]
	}
	return strconv.FormatFloat(v, 'f', 0, 64) + " " + dataUnits[e]
}

// FormatNumber renders a plain number with at most 6 decimals.
func FormatNumber(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	s := strconv.FormatFloat(v, 'f', 6, 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// FormatPercent renders a 0..1 ratio as "12.34%".
func FormatPercent(r float64) string {
	return strconv.FormatFloat(r*100, 'f', 2, 64) + "%"
}

// FormatValue renders a value of a metric with value type vt: durations
// per timeUnit, bytes in kB/MB, plain numbers otherwise.
func FormatValue(v float64, vt metrics.ValueType, timeUnit string) string {
	switch vt {
	case metrics.Time:
		return FormatDuration(v, timeUnit)
	case metrics.Data:
		return FormatBytes(v)
	}
	return FormatNumber(v)
}

// ThresholdFormatter returns how the values a threshold reads on a metric
// of type mt and value type vt are shown: percentages for Rate metrics,
// otherwise per value type.
func ThresholdFormatter(mt metrics.MetricType, vt metrics.ValueType, timeUnit string) func(float64) string {
	if mt == metrics.Rate {
		return FormatPercent
	}
	return func(v float64) string { return FormatValue(v, vt, timeUnit) }
}
