// Package thresholds parses k6 threshold expressions and the
// options.thresholds configuration, validates them against the metric
// registry, and evaluates them against metric sinks: periodically while a
// test runs (with abortOnFail) and once at the end.
package thresholds

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/cdeload/cdeload/engine/metrics"
)

// Method is the aggregation a threshold compares.
type Method int

// The aggregation methods of the threshold grammar.
const (
	Count Method = iota
	RateMethod
	Value
	Avg
	Min
	Max
	Med
	Percentile
)

var methodNames = map[string]Method{
	"count": Count, "rate": RateMethod, "value": Value,
	"avg": Avg, "min": Min, "max": Max, "med": Med,
}

// Op is a comparison operator.
type Op int

// Operators, in the order the parser tries them.
const (
	LessEq Op = iota
	Less
	GreaterEq
	Greater
	StrictEq
	Eq
	NotEq
)

var opTokens = []struct {
	tok string
	op  Op
}{{"<=", LessEq}, {"<", Less}, {">=", GreaterEq}, {">", Greater}, {"===", StrictEq}, {"==", Eq}, {"!=", NotEq}}

// String returns the operator as written in an expression.
func (o Op) String() string {
	for _, t := range opTokens {
		if t.op == o {
			return t.tok
		}
	}
	return fmt.Sprintf("Op(%d)", int(o))
}

// Expr is one parsed assertion: `method op value`.
type Expr struct {
	Method Method
	// Pct is N of p(N) when Method is Percentile.
	Pct   float64
	Op    Op
	Limit float64
}

// MethodName returns the method as k6 names it: count, rate, value, avg,
// min, max, med, or p(N).
func (e Expr) MethodName() string {
	if e.Method == Percentile {
		return "p(" + strconv.FormatFloat(e.Pct, 'f', -1, 64) + ")"
	}
	for n, m := range methodNames {
		if m == e.Method {
			return n
		}
	}
	return "?"
}

// String renders the expression canonically, e.g. "p(95)<200".
func (e Expr) String() string {
	return e.MethodName() + e.Op.String() + strconv.FormatFloat(e.Limit, 'f', -1, 64)
}

const grammarHelp = "expected `method operator number`, e.g. 'p(95)<200' or 'rate>=0.99', " +
	"with method one of count, rate, value, avg, min, max, med, p(N) " +
	"and operator one of <, <=, >, >=, ==, ===, !="

// ParseExpr parses an assertion such as "p(95) < 200".
func ParseExpr(src string) (Expr, error) {
	s := strings.TrimSpace(src)
	at := strings.IndexAny(s, "<>=!")
	if at < 0 {
		return Expr{}, fmt.Errorf("no comparison operator in %q: %s", src, grammarHelp)
	}
	var e Expr
	opLen := 0
	for _, t := range opTokens {
		if strings.HasPrefix(s[at:], t.tok) {
			e.Op, opLen = t.op, len(t.tok)
			break
		}
	}
	if opLen == 0 {
		return Expr{}, fmt.Errorf("invalid operator in %q: %s", src, grammarHelp)
	}
	method := strings.TrimSpace(s[:at])
	if m, ok := methodNames[method]; ok {
		e.Method = m
	} else if strings.HasPrefix(method, "p(") {
		pct, err := metrics.ParsePercentile(strings.ReplaceAll(method, " ", ""))
		if err != nil {
			return Expr{}, fmt.Errorf("in %q: %w", src, err)
		}
		e.Method, e.Pct = Percentile, pct
	} else if method == "" {
		return Expr{}, fmt.Errorf("no aggregation method before the operator in %q: %s", src, grammarHelp)
	} else {
		return Expr{}, fmt.Errorf("unknown aggregation method %q in %q: %s", method, src, grammarHelp)
	}
	val := strings.TrimSpace(s[at+opLen:])
	limit, err := strconv.ParseFloat(val, 64)
	if err != nil || math.IsNaN(limit) {
		hint := ""
		if num := strings.TrimRight(val, "abcdefghijklmnopqrstuvwxyzµ"); num != val && num != "" {
			hint = " (no units: time metrics are compared in milliseconds, data metrics in bytes)"
		}
		return Expr{}, fmt.Errorf("invalid number %q after %q in %q%s: %s", val, e.Op, src, hint, grammarHelp)
	}
	e.Limit = limit
	return e, nil
}

// Supported reports whether the expression's method applies to metrics of
// type t: Counter count, rate; Gauge value; Rate rate; Trend avg, min, max,
// med, p(N).
func (e Expr) Supported(t metrics.MetricType) bool {
	switch t {
	case metrics.Counter:
		return e.Method == Count || e.Method == RateMethod
	case metrics.Gauge:
		return e.Method == Value
	case metrics.Rate:
		return e.Method == RateMethod
	case metrics.Trend:
		switch e.Method {
		case Avg, Min, Max, Med, Percentile:
			return true
		}
	}
	return false
}

// AllowedMethods describes the methods allowed for type t, for messages.
func AllowedMethods(t metrics.MetricType) string {
	switch t {
	case metrics.Counter:
		return "count, rate"
	case metrics.Gauge:
		return "value"
	case metrics.Rate:
		return "rate"
	default:
		return "avg, min, max, med, p(N)"
	}
}

// Compare applies the operator: observed op limit.
func (e Expr) Compare(observed float64) bool {
	switch e.Op {
	case LessEq:
		return observed <= e.Limit
	case Less:
		return observed < e.Limit
	case GreaterEq:
		return observed >= e.Limit
	case Greater:
		return observed > e.Limit
	case StrictEq, Eq:
		return observed == e.Limit
	case NotEq:
		return observed != e.Limit
	}
	return false
}

// Observe returns the value the method reads from sink, for a test run of
// duration d. ok is false when the sink has no such value: a Rate without
// samples, or a Counter rate when d is 0. An empty Trend or Gauge reads 0
// and an empty Counter count reads 0, as in k6.
func (e Expr) Observe(sink metrics.Sink, d time.Duration) (v float64, ok bool) {
	switch s := sink.(type) {
	case *metrics.CounterSink:
		if e.Method == RateMethod {
			return s.Rate(d)
		}
		return s.Sum, true
	case *metrics.GaugeSink:
		return s.Value, true
	case *metrics.RateSink:
		return s.Rate()
	case *metrics.TrendSink:
		switch e.Method {
		case Avg:
			return s.Avg(), true
		case Min:
			return s.Min(), true
		case Max:
			return s.Max(), true
		case Med:
			return s.P(50), true
		case Percentile:
			return s.P(e.Pct), true
		}
	}
	return 0, false
}
