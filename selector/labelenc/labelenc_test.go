package labelenc

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Keys as the contract has them (package selector), for the tests.
const (
	labelJob      = "concourse-ci.org/job"
	labelPipeline = "concourse-ci.org/pipeline"
)

func hash10(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:10]
}

func TestEncode(t *testing.T) {
	long := strings.Repeat("a", 70)
	tests := []struct {
		name, in, want string
	}{
		{"valid stays", "main", "main"},
		{"empty is valid", "", ""},
		{"valid with dots", "v1.2_rc-3", "v1.2_rc-3"},
		{"slash", "x/y", "x-y-bd3c9047d6"},
		{"non-ascii code points", "täst", "t-st-6db94e19a2"},
		{"nothing alphanumeric left", "--", "d8156bae0c"},
		{"trimmed ends", "ünï", "n-e975a52994"},
		{"too long", long, strings.Repeat("a", 52) + "-" + hash10(long)},
		{"cut then trim", strings.Repeat("a", 51) + "/b" + strings.Repeat("c", 20), strings.Repeat("a", 51) + "-" + hash10(strings.Repeat("a", 51)+"/b"+strings.Repeat("c", 20))},
		{"64 valid characters", strings.Repeat("b", 64), strings.Repeat("b", 52) + "-" + hash10(strings.Repeat("b", 64))},
		{"leading dot", ".hidden", "hidden-" + hash10(".hidden")},
		{"space", "my pipeline", "my-pipeline-" + hash10("my pipeline")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Encode(tt.in); got != tt.want {
				t.Errorf("Encode(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestHasValue(t *testing.T) {
	// "x/y" and "x:y" encode alike apart from the hash; a valid name can
	// equal another's encoding: the annotation tells them apart.
	enc := Encode("x/y")
	tests := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		ask         string
		want        bool
	}{
		{"plain", map[string]string{labelJob: "unit"}, nil, "unit", true},
		{"plain other", map[string]string{labelJob: "unit"}, nil, "build", false},
		{"encoded", map[string]string{labelJob: enc}, map[string]string{labelJob: "x/y"}, "x/y", true},
		{"encoded without annotation is a valid name", map[string]string{labelJob: enc}, nil, "x/y", false},
		{"valid name stored plain", map[string]string{labelJob: enc}, nil, enc, true},
		{"valid name that looks encoded", map[string]string{labelJob: enc}, map[string]string{labelJob: "x/y"}, enc, false},
		{"annotation says otherwise", map[string]string{labelJob: "unit"}, map[string]string{labelJob: "other"}, "unit", false},
		{"missing", nil, nil, "unit", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := HasValue(tt.labels, tt.annotations, labelJob, tt.ask); got != tt.want {
				t.Errorf("HasValue(%v, %v, %q) = %v, want %v", tt.labels, tt.annotations, tt.ask, got, tt.want)
			}
		})
	}
}

func FuzzEncode(f *testing.F) {
	for _, s := range []string{"", "main", "x/y", "täst", "--", strings.Repeat("a", 70), "a\x00b", "\xff\xfe", "日本語のパイプライン"} {
		f.Add(s, "main")
	}
	f.Add(Encode("x/y"), "x/y")
	f.Add("x/y", Encode("x/y"))
	f.Fuzz(func(t *testing.T, a, b string) {
		if Valid(a) != (len(validation.IsValidLabelValue(a)) == 0) {
			t.Fatalf("Valid(%q) = %v, Kubernetes says %v", a, Valid(a), validation.IsValidLabelValue(a))
		}
		ea := Encode(a)
		if errs := validation.IsValidLabelValue(ea); len(errs) > 0 {
			t.Fatalf("Encode(%q) = %q, not a label value: %v", a, ea, errs)
		}
		if Encode(a) != ea {
			t.Fatalf("Encode(%q) is not deterministic", a)
		}
		if len(validation.IsValidLabelValue(a)) == 0 && ea != a {
			t.Fatalf("Encode(%q) = %q, want a valid value kept", a, ea)
		}
		// Store a as the contract says and look both names up.
		labels := map[string]string{labelPipeline: ea}
		var annotations map[string]string
		if Encode(a) != a {
			annotations = map[string]string{labelPipeline: a}
		}
		if !HasValue(labels, annotations, labelPipeline, a) {
			t.Fatalf("HasValue does not find %q stored as %q", a, ea)
		}
		if got, _ := Original(labels, annotations, labelPipeline); got != a {
			t.Fatalf("Original = %q, want %q", got, a)
		}
		if a != b && HasValue(labels, annotations, labelPipeline, b) {
			t.Fatalf("%q stored as %q is taken for %q (encoded %q)", a, ea, b, Encode(b))
		}
	})
}
