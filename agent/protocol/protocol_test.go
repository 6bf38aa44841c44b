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

// A cache manifest's entries come back as written, whatever their names.
func TestCacheManifestRoundTrip(t *testing.T) {
	sha := "9ef1d4fe0b249f37dc50d84b917d69ebee57800afc081051a57e7f343b8edc6e"
	entries := []CacheEntry{
		{Entry: Entry{Path: ".", Kind: KindDir, Mode: 0o755}, MTime: 1796620242148691680},
		{Entry: Entry{Path: "with space/\"q\" \\ new\nline", Kind: KindFile, Mode: 0o4755, Size: 22, SHA256: sha},
			MTime: 1, Ino: 1<<63 + 5, CTime: 1796620251602937095},
		{Entry: Entry{Path: "caf\xe9/\xff", Kind: KindFile, Mode: 0o600}},
		{Entry: Entry{Path: "l", Kind: KindSymlink, Mode: 0o777, Link: "../a b\"\n"}, MTime: -1},
	}
	var b bytes.Buffer
	if err := WriteCacheManifest(&b, entries); err != nil {
		t.Fatal(err)
	}
	got, err := ReadCacheManifest(&b)
	if err != nil || len(got) != len(entries) {
		t.Fatalf("ReadCacheManifest = %d entries, %v", len(got), err)
	}
	for i := range entries {
		if got[i] != entries[i] {
			t.Errorf("entry %d = %+v, want %+v", i, got[i], entries[i])
		}
	}
	for _, bad := range []string{"f 644 1 2 3 4 - \"a\"\n", "f 9 1 2 3 4 - \"a\" \"\"\n", "f 644 1 2 3 4 - \"a\"\"\"\n", "f 644 x 2 3 4 - \"a\" \"\"\n"} {
		if _, err := ReadCacheManifest(bytes.NewBufferString(bad)); err == nil {
			t.Errorf("ReadCacheManifest(%q) = nil error", bad)
		}
	}
}
