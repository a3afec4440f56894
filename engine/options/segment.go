package options

import (
	"fmt"
	"math/big"
	"strings"
)

// Segment is an execution segment: the part [From, To) of the whole test
// that this instance runs (k6-operator splits a test this way).
type Segment struct {
	From, To *big.Rat
}

// String returns the segment as "from:to".
func (s Segment) String() string {
	return s.From.RatString() + ":" + s.To.RatString()
}

// ParseSegment parses "a:b" or "b" (= "0:b"), where each end is a fraction
// ("1/4"), a decimal ("0.25") or a percentage ("25%") in [0, 1].
func ParseSegment(s string) (Segment, error) {
	fromS, toS, ok := strings.Cut(s, ":")
	if !ok {
		fromS, toS = "0", s
	}
	from, err := parseRat(fromS)
	if err != nil {
		return Segment{}, fmt.Errorf("segment %q: %w", s, err)
	}
	to, err := parseRat(toS)
	if err != nil {
		return Segment{}, fmt.Errorf("segment %q: %w", s, err)
	}
	if from.Cmp(to) >= 0 {
		return Segment{}, fmt.Errorf("segment %q: the start must be smaller than the end", s)
	}
	return Segment{From: from, To: to}, nil
}

// ParseSegmentSequence parses "0,1/4,1/2,1": increasing points in [0, 1].
func ParseSegmentSequence(s string) ([]*big.Rat, error) {
	var out []*big.Rat
	for _, p := range strings.Split(s, ",") {
		r, err := parseRat(strings.TrimSpace(p))
		if err != nil {
			return nil, fmt.Errorf("sequence %q: %w", s, err)
		}
		if len(out) > 0 && out[len(out)-1].Cmp(r) >= 0 {
			return nil, fmt.Errorf("sequence %q: points must be strictly increasing", s)
		}
		out = append(out, r)
	}
	if len(out) < 2 {
		return nil, fmt.Errorf("sequence %q: needs at least two points", s)
	}
	return out, nil
}

func parseRat(s string) (*big.Rat, error) {
	r := new(big.Rat)
	var ok bool
	if strings.HasSuffix(s, "%") {
		_, ok = r.SetString(strings.TrimSuffix(s, "%"))
		if ok {
			r.Quo(r, big.NewRat(100, 1))
		}
	} else {
		_, ok = r.SetString(s)
	}
	if !ok {
		return nil, fmt.Errorf("%q is not a number, fraction or percentage", s)
	}
	if r.Sign() < 0 || r.Cmp(big.NewRat(1, 1)) > 0 {
		return nil, fmt.Errorf("%q is outside [0, 1]", s)
	}
	return r, nil
}

// Scale returns this segment's share of v: floor(v·to) − floor(v·from).
// The shares of contiguous segments sum to v exactly.
func (s Segment) Scale(v int64) int64 {
	return floorMul(v, s.To) - floorMul(v, s.From)
}

func floorMul(v int64, r *big.Rat) int64 {
	p := new(big.Int).Mul(big.NewInt(v), r.Num())
	q := new(big.Int).Div(p, r.Denom()) // Euclidean division: floor for positive denominators
	return q.Int64()
}

// ScaleScenarios returns copies of the scenarios with this segment's share
// of their VUs, iterations and arrival rates, so that the instances of a
// segmented test together run the whole test. Per-VU iterations are not
// scaled (every VU still runs them all). Shares are contiguous floor
// differences, not k6's striping; their sums are exact.
func (s Segment) ScaleScenarios(sc Scenarios) Scenarios {
	out := make(Scenarios, len(sc))
	share := new(big.Rat).Sub(s.To, s.From)
	for name, c := range sc {
		n := *c
		n.Stages = append([]Stage(nil), c.Stages...)
		switch c.Executor {
		case SharedIterations:
			n.VUs, n.Iterations = s.Scale(c.VUs), s.Scale(c.Iterations)
		case PerVUIterations, ConstantVUs:
			n.VUs = s.Scale(c.VUs)
		case RampingVUs:
			n.StartVUs = s.Scale(c.StartVUs)
			for i := range n.Stages {
				n.Stages[i].Target = s.Scale(c.Stages[i].Target)
			}
		case ConstantArrivalRate, RampingArrivalRate:
			n.PreAllocatedVUs, n.MaxVUs = s.Scale(c.PreAllocatedVUs), s.Scale(c.MaxVUs)
			if share.Sign() > 0 {
				f, _ := share.Float64()
				n.TimeUnit = Duration(float64(c.TimeUnit) / f)
			}
		}
		out[name] = &n
	}
	return out
}

// Offset returns floor(v·from): the whole-test index of this segment's
// first unit of v (its first shared iteration, its first VU). Together
// with Scale it makes the segments of a sequence cover 0..v−1 exactly.
func (s Segment) Offset(v int64) int64 {
	return floorMul(v, s.From)
}

// IndexIn returns the position i of the segment among the n segments of
// the sequence seq. An empty seq is derived from the segment alone as
// [0, from, to, 1] without duplicates. The segment must join two
// consecutive points of seq.
func (s Segment) IndexIn(seq []*big.Rat) (i, n int, err error) {
	if len(seq) == 0 {
		seq = []*big.Rat{new(big.Rat)}
		if s.From.Sign() > 0 {
			seq = append(seq, s.From)
		}
		if s.To.Cmp(big.NewRat(1, 1)) < 0 {
			seq = append(seq, s.To)
		}
		seq = append(seq, big.NewRat(1, 1))
	}
	for k := 0; k+1 < len(seq); k++ {
		if seq[k].Cmp(s.From) == 0 && seq[k+1].Cmp(s.To) == 0 {
			return k, len(seq) - 1, nil
		}
	}
	pts := make([]string, len(seq))
	for k, p := range seq {
		pts[k] = p.RatString()
	}
	return 0, 0, fmt.Errorf("segment %s is not one of the sequence %s (it must join two consecutive points)", s, strings.Join(pts, ","))
}

// Placement is where one instance sits in a segmented test. Executors use
// it to number iterations test-wide (k6/execution's
// scenario.iterationInTest) without talking to the other instances.
type Placement struct {
	// Segment is this instance's segment.
	Segment Segment
	// Index is the segment's position among the Count segments of the
	// sequence.
	Index, Count int
	// Whole are the test's scenarios before ScaleScenarios.
	Whole Scenarios
}

// NewPlacement places segment seg of the sequence seq (nil: derived, see
// IndexIn) in a test whose unscaled scenarios are whole.
func NewPlacement(seg Segment, seq []*big.Rat, whole Scenarios) (*Placement, error) {
	i, n, err := seg.IndexIn(seq)
	if err != nil {
		return nil, err
	}
	return &Placement{Segment: seg, Index: i, Count: n, Whole: whole}, nil
}
