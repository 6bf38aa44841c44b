package selector

import (
	"slices"
	"testing"
)

func TestCompareNumbered(t *testing.T) {
	// Sorted ascending by the one order of build ids, names and attempts.
	want := []string{"", "abc", "1", "1.1", "1.1.2", "1.2", "2", "9", "10", "42", "42.1", "42.10", "43"}
	got := slices.Clone(want)
	slices.Reverse(got)
	slices.SortFunc(got, CompareNumbered)
	if !slices.Equal(got, want) {
		t.Errorf("sorted %q\nwant   %q", got, want)
	}
	if CompareNumbered("7", "7") != 0 {
		t.Error("7 != 7")
	}
}
