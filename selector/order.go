package selector

import (
	"cmp"
	"strconv"
	"strings"
)

// CompareNumbered is the one order of build ids, build names and attempts:
// dot-separated parts compared one by one, numbers by value (so 9 < 10 and
// a rerun 42.1 comes after 42 and before 43), and a part that is missing or
// not a number before any number, as fly's zero build id is the lowest.
// Text parts compare as text; a name that is a prefix of another comes first.
func CompareNumbered(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < len(as) && i < len(bs); i++ {
		if c := compareNumberPart(as[i], bs[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(as), len(bs))
}

func compareNumberPart(a, b string) int {
	x, errA := strconv.ParseUint(a, 10, 64)
	y, errB := strconv.ParseUint(b, 10, 64)
	switch {
	case errA == nil && errB == nil:
		return cmp.Compare(x, y)
	case errA == nil:
		return 1
	case errB == nil:
		return -1
	}
	return cmp.Compare(a, b)
}
