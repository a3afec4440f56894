package executor

import (
	"github.com/cdeload/cdeload/engine/lib"
	"github.com/cdeload/cdeload/engine/options"
)

// numbering turns a scenario's iteration numbers on this instance into
// numbers unique across the instances of a segmented test
// (exec.scenario.iterationInTest). The zero value is the unsegmented
// test: inTest = inInstance.
//
// The rules, with the scaled scenario running on segment [from, to) that
// is segment index of count in the sequence:
//   - shared-iterations: dense. The instance runs the whole test's
//     iterations floor(total·from) … floor(total·to)−1, so inTest =
//     floor(total·from) + inInstance.
//   - per-vu-iterations: dense. The instance's VUs are the whole test's
//     VUs floor(vus·from) … floor(vus·to)−1, so the k-th iteration of the
//     instance's j-th VU is (floor(vus·from) + j)·iterations + k.
//   - time-based executors (constant-vus, ramping-vus, the arrival
//     rates): inTest = inInstance·count + index. Unique across the
//     instances of one sequence but not dense, unlike k6's striping: an
//     instance that runs fewer iterations leaves gaps. Without a sequence
//     each instance derives one from its own segment, which keeps two
//     halves apart but not every split; the k6-operator always passes the
//     sequence.
type numbering struct {
	// kind is one of numLocal, numOffset, numPerVU, numStride.
	kind int
	// offset is the first iteration (numOffset) or the first VU
	// (numPerVU).
	offset uint64
	// perVU is the iterations per VU (numPerVU).
	perVU uint64
	// stride and index are count and index (numStride).
	stride, index uint64
}

const (
	numLocal = iota
	numOffset
	numPerVU
	numStride
)

// newNumbering returns the numbering of the scaled scenario sc on the
// instance placed at p (nil: not segmented).
func newNumbering(sc *options.Scenario, p *options.Placement) (numbering, error) {
	if p == nil {
		return numbering{}, nil
	}
	whole, ok := p.Whole[sc.Name]
	if !ok || whole.Executor != sc.Executor {
		return numbering{}, lib.Errorf(lib.ExitInvalidConfig, "scenario %q: not in the unsegmented test's scenarios", sc.Name)
	}
	switch sc.Executor {
	case options.SharedIterations:
		return numbering{kind: numOffset, offset: uint64(p.Segment.Offset(whole.Iterations))}, nil
	case options.PerVUIterations:
		return numbering{kind: numPerVU, offset: uint64(p.Segment.Offset(whole.VUs)), perVU: uint64(sc.Iterations)}, nil
	default:
		return numbering{kind: numStride, stride: uint64(p.Count), index: uint64(p.Index)}, nil
	}
}

// inTest returns the test-wide number of the instance's iteration n; for
// per-vu-iterations vu is the VU's index in the instance's scenario and k
// its own iteration number.
func (m numbering) inTest(n, vu, k uint64) uint64 {
	switch m.kind {
	case numOffset:
		return m.offset + n
	case numPerVU:
		return (m.offset+vu)*m.perVU + k
	case numStride:
		return n*m.stride + m.index
	default:
		return n
	}
}
