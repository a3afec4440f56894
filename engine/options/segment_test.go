package options

import (
	"strings"
	"testing"
)

func TestSegmentOffsetsCoverTheWholeTest(t *testing.T) {
	t.Parallel()
	// Every unit 0..v-1 is in exactly one segment: [Offset, Offset+Scale).
	for _, v := range []int64{0, 1, 7, 10, 11, 100} {
		next := int64(0)
		for _, s := range []string{"0:1/3", "1/3:1/2", "1/2:2/3", "2/3:1"} {
			seg, err := ParseSegment(s)
			if err != nil {
				t.Fatal(err)
			}
			if off := seg.Offset(v); off != next {
				t.Fatalf("v=%d segment %s: offset %d, want %d (the previous segment's end)", v, s, off, next)
			}
			next += seg.Scale(v)
		}
		if next != v {
			t.Fatalf("v=%d: segments cover 0..%d", v, next-1)
		}
	}
}

func TestSegmentIndexIn(t *testing.T) {
	t.Parallel()
	seq, err := ParseSegmentSequence("0,1/4,1/2,1")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		seg     string
		seq     bool
		i, n    int
		wantErr string
	}{
		{"0:1/4", true, 0, 3, ""},
		{"1/4:1/2", true, 1, 3, ""},
		{"50%:100%", true, 2, 3, ""},
		{"1/4:1", true, 0, 0, "not one of the sequence 0,1/4,1/2,1"},
		{"0:1/3", true, 0, 0, "not one of the sequence"},
		// Derived: [0, from, to, 1] without duplicates.
		{"0:1", false, 0, 1, ""},
		{"0:1/2", false, 0, 2, ""},
		{"1/2:1", false, 1, 2, ""},
		{"1/3:2/3", false, 1, 3, ""},
	} {
		seg, err := ParseSegment(tc.seg)
		if err != nil {
			t.Fatal(err)
		}
		s := seq
		if !tc.seq {
			s = nil
		}
		i, n, err := seg.IndexIn(s)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), seg.String()) {
				t.Fatalf("%s: error %v, want one naming the segment and %q", tc.seg, err, tc.wantErr)
			}
			continue
		}
		if err != nil || i != tc.i || n != tc.n {
			t.Fatalf("%s (sequence %v): index %d of %d, %v; want %d of %d", tc.seg, tc.seq, i, n, err, tc.i, tc.n)
		}
	}
}

func TestNewPlacement(t *testing.T) {
	t.Parallel()
	whole := Scenarios{"a": {Name: "a", Executor: SharedIterations, VUs: 2, Iterations: 10}}
	seg, _ := ParseSegment("1/2:1")
	seq, _ := ParseSegmentSequence("0,1/2,1")
	p, err := NewPlacement(seg, seq, whole)
	if err != nil || p.Index != 1 || p.Count != 2 || p.Whole["a"].Iterations != 10 {
		t.Fatalf("placement %+v, %v", p, err)
	}
	bad, _ := ParseSegmentSequence("0,1/3,1")
	if _, err := NewPlacement(seg, bad, whole); err == nil {
		t.Fatal("a segment outside its sequence was accepted")
	}
}
