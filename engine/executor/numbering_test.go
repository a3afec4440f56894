package executor

import (
	"context"
	"math/big"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/cdeload/cdeload/engine/executor/executortest"
	"github.com/cdeload/cdeload/engine/options"
)

// numbers are the (inInstance, inTest) pairs of one instance's iterations.
type numbers struct {
	mu                 sync.Mutex
	inInstance, inTest []uint64
}

// runSegment runs the whole-test scenario sc as the instance of segment
// seg (in the sequence seq, "" for none), like `run --execution-segment`
// does: scaled scenarios and a placement. It returns every iteration's
// numbers.
func runSegment(t *testing.T, sc *options.Scenario, seg, seq string) *numbers {
	t.Helper()
	got := &numbers{}
	h := newHarness(t, func(ctx context.Context, v *executortest.VU) error {
		in, test := v.IterationNumbers()
		got.mu.Lock()
		got.inInstance = append(got.inInstance, in)
		got.inTest = append(got.inTest, test)
		got.mu.Unlock()
		return executortest.Sleep(2*time.Millisecond)(ctx, v)
	})
	whole := options.Scenarios{sc.Name: sc}
	if sc.Set == nil {
		sc.Set = map[string]bool{}
	}
	if seg != "" {
		s, err := options.ParseSegment(seg)
		if err != nil {
			t.Fatal(err)
		}
		var points []*big.Rat
		if seq != "" {
			if points, err = options.ParseSegmentSequence(seq); err != nil {
				t.Fatal(err)
			}
		}
		if h.env.Placement, err = options.NewPlacement(s, points, whole); err != nil {
			t.Fatal(err)
		}
		whole = s.ScaleScenarios(whole)
	}
	h.run(context.Background(), whole[sc.Name])
	return got
}

// union checks that the instances' inTest sets are disjoint and returns
// their sorted union.
func union(t *testing.T, all ...*numbers) []uint64 {
	t.Helper()
	seen := map[uint64]int{}
	var out []uint64
	for i, n := range all {
		for _, v := range n.inTest {
			if j, dup := seen[v]; dup {
				t.Fatalf("iterationInTest %d appears in instance %d and instance %d", v, j, i)
			}
			seen[v] = i
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

func upTo(n int) []uint64 {
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i)
	}
	return out
}

func TestSharedIterationsInTestIsDenseAcrossSegments(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		total int64
		seq   string
		segs  []string
	}{
		{11, "0,1/2,1", []string{"0:1/2", "1/2:1"}},
		{10, "0,1/3,2/3,1", []string{"0:1/3", "1/3:2/3", "2/3:1"}},
		{11, "", []string{"0:1/2", "1/2:1"}},
	} {
		var all []*numbers
		for _, seg := range tc.segs {
			sc := &options.Scenario{Name: "s", Executor: options.SharedIterations, VUs: 3, Iterations: tc.total,
				MaxDuration: ms(10000), GracefulStop: ms(1000)}
			n := runSegment(t, sc, seg, tc.seq)
			s, _ := options.ParseSegment(seg)
			off := uint64(s.Offset(tc.total))
			// Sequential within the instance: offset + its own number.
			for i := range n.inTest {
				if n.inTest[i] != off+n.inInstance[i] {
					t.Fatalf("segment %s: inTest %d for inInstance %d, want offset %d + inInstance", seg, n.inTest[i], n.inInstance[i], off)
				}
			}
			all = append(all, n)
		}
		if got := union(t, all...); !slices.Equal(got, upTo(int(tc.total))) {
			t.Fatalf("segments %v of %d shared iterations: inTest union %v, want 0..%d", tc.segs, tc.total, got, tc.total-1)
		}
	}
}

func TestPerVUIterationsInTestIsDenseAcrossSegments(t *testing.T) {
	t.Parallel()
	// 3 VUs × 4 iterations split 1 VU / 2 VUs: inTest = (first VU + VU)·4 + k.
	var all []*numbers
	for _, seg := range []string{"0:1/2", "1/2:1"} {
		sc := &options.Scenario{Name: "p", Executor: options.PerVUIterations, VUs: 3, Iterations: 4,
			MaxDuration: ms(10000), GracefulStop: ms(1000)}
		all = append(all, runSegment(t, sc, seg, "0,1/2,1"))
	}
	if len(all[0].inTest) != 4 || len(all[1].inTest) != 8 {
		t.Fatalf("instances ran %d and %d iterations, want 4 (1 VU) and 8 (2 VUs)", len(all[0].inTest), len(all[1].inTest))
	}
	if got := union(t, all...); !slices.Equal(got, upTo(12)) {
		t.Fatalf("inTest union %v, want 0..11", got)
	}
	// The first instance's one VU is VU 0 of the test: 0..3.
	first := slices.Sorted(slices.Values(all[0].inTest))
	if !slices.Equal(first, upTo(4)) {
		t.Fatalf("segment 0:1/2 numbered %v, want 0..3", first)
	}
}

func TestTimeBasedExecutorsInTestIsStridedBySegment(t *testing.T) {
	t.Parallel()
	scenarios := map[string]func() *options.Scenario{
		options.ConstantVUs: func() *options.Scenario {
			return &options.Scenario{Name: "c", Executor: options.ConstantVUs, VUs: 3, Duration: ms(150), GracefulStop: ms(500)}
		},
		options.RampingVUs: func() *options.Scenario {
			return &options.Scenario{Name: "r", Executor: options.RampingVUs, StartVUs: 3,
				Stages: []options.Stage{{Duration: ms(150), Target: 3}}, GracefulStop: ms(500), GracefulRampDown: ms(0)}
		},
		options.ConstantArrivalRate: func() *options.Scenario {
			return &options.Scenario{Name: "a", Executor: options.ConstantArrivalRate, Rate: 60, TimeUnit: ms(1000),
				Duration: ms(300), PreAllocatedVUs: 3, MaxVUs: 3, GracefulStop: ms(500)}
		},
		options.RampingArrivalRate: func() *options.Scenario {
			return &options.Scenario{Name: "ra", Executor: options.RampingArrivalRate, StartRate: 60, TimeUnit: ms(1000),
				Stages: []options.Stage{{Duration: ms(300), Target: 60}}, PreAllocatedVUs: 3, MaxVUs: 3, GracefulStop: ms(500)}
		},
	}
	for name, mk := range scenarios {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			// Three segments of one sequence, one VU each; N = 3, i = 0, 1, 2.
			segs := []string{"0:1/3", "1/3:2/3", "2/3:1"}
			var all []*numbers
			for i, seg := range segs {
				n := runSegment(t, mk(), seg, "0,1/3,2/3,1")
				if len(n.inTest) == 0 {
					t.Fatalf("segment %s ran no iteration", seg)
				}
				for k := range n.inTest {
					if want := n.inInstance[k]*3 + uint64(i); n.inTest[k] != want {
						t.Fatalf("segment %s: inTest %d for inInstance %d, want %d", seg, n.inTest[k], n.inInstance[k], want)
					}
				}
				all = append(all, n)
			}
			union(t, all...)
		})
	}
}

func TestTimeBasedInTestWithoutSequenceDerivesOne(t *testing.T) {
	t.Parallel()
	// Without a sequence, 1/2:1 is segment 1 of [0, 1/2, 1] and 0:1/2
	// segment 0: odd and even numbers.
	mk := func() *options.Scenario {
		return &options.Scenario{Name: "c", Executor: options.ConstantVUs, VUs: 2, Duration: ms(100), GracefulStop: ms(500)}
	}
	a, b := runSegment(t, mk(), "0:1/2", ""), runSegment(t, mk(), "1/2:1", "")
	for _, v := range a.inTest {
		if v%2 != 0 {
			t.Fatalf("segment 0:1/2 numbered %v, want even numbers", a.inTest)
		}
	}
	for _, v := range b.inTest {
		if v%2 != 1 {
			t.Fatalf("segment 1/2:1 numbered %v, want odd numbers", b.inTest)
		}
	}
	union(t, a, b)
}

func TestWithoutSegmentInTestIsInInstance(t *testing.T) {
	t.Parallel()
	for _, sc := range []*options.Scenario{
		{Name: "s", Executor: options.SharedIterations, VUs: 2, Iterations: 7, MaxDuration: ms(10000), GracefulStop: ms(1000)},
		{Name: "p", Executor: options.PerVUIterations, VUs: 2, Iterations: 3, MaxDuration: ms(10000), GracefulStop: ms(1000)},
		{Name: "c", Executor: options.ConstantVUs, VUs: 2, Duration: ms(60), GracefulStop: ms(500)},
	} {
		n := runSegment(t, sc, "", "")
		if len(n.inTest) == 0 || !slices.Equal(n.inTest, n.inInstance) {
			t.Fatalf("%s without a segment: inTest %v, inInstance %v, want equal", sc.Executor, n.inTest, n.inInstance)
		}
		if got := slices.Sorted(slices.Values(n.inTest)); !slices.Equal(got, upTo(len(got))) {
			t.Fatalf("%s without a segment: inTest %v, want 0..%d", sc.Executor, got, len(got)-1)
		}
	}
}

func TestNewRefusesAScenarioMissingFromTheWholeTest(t *testing.T) {
	t.Parallel()
	seg, _ := options.ParseSegment("0:1/2")
	p, err := options.NewPlacement(seg, nil, options.Scenarios{})
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, executortest.Sleep(0))
	h.env.Placement = p
	_, err = New(&options.Scenario{Name: "x", Executor: options.ConstantVUs, VUs: 1, Duration: ms(10)}, h.env)
	if err == nil {
		t.Fatal("New accepted a scenario the placement does not know")
	}
}
