package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestNameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		in   Name
	}{
		{"plain", "a/b.go"},
		{"odd", "with space/@v1+x/new\nline"},
		{"not utf-8", "caf\xe9/\xff\xfe"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(Entry{Path: tt.in, Link: tt.in})
			if err != nil {
				t.Fatal(err)
			}
			var got Entry
			if err := json.Unmarshal(b, &got); err != nil || got.Path != tt.in || got.Link != tt.in {
				t.Errorf("round trip of %q through %s = %q, %q, %v", tt.in, b, got.Path, got.Link, err)
			}
		})
	}
}

func TestManifestDigestIsOrderFree(t *testing.T) {
	a := []Entry{{Path: ".", Kind: KindDir, Mode: 0o755}, {Path: "x", Kind: KindFile, Mode: 0o644, Size: 1, SHA256: "ab"}}
	b := []Entry{a[1], a[0]}
	if ManifestDigest(a) != ManifestDigest(b) {
		t.Error("ManifestDigest depends on the entries' order")
	}
	var buf bytes.Buffer
	if err := WriteManifest(&buf, a); err != nil {
		t.Fatal(err)
	}
	got, err := ReadManifest(&buf)
	if err != nil || ManifestDigest(got) != ManifestDigest(a) {
		t.Errorf("ReadManifest(WriteManifest) = %v, %v", got, err)
	}
}
