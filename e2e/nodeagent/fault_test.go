package nodeagent

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseFaults(t *testing.T) {
	tests := []struct {
		name    string
		ann     map[string]string
		want    faults
		wantErr bool
	}{
		{name: "none", want: faults{cutTimes: -1}},
		{name: "cut every session", ann: map[string]string{AnnotationExecCutAfterBytes: "100"}, want: faults{cutAfter: 100, cutTimes: -1}},
		{name: "cut twice, throttled", ann: map[string]string{AnnotationExecCutAfterBytes: "5", AnnotationExecCutTimes: "2", AnnotationExecBytesPerSecond: "1000"},
			want: faults{cutAfter: 5, cutTimes: 2, bytesPerSecond: 1000}},
		{name: "not a number", ann: map[string]string{AnnotationExecCutAfterBytes: "lots"}, wantErr: true},
		{name: "negative", ann: map[string]string{AnnotationExecBytesPerSecond: "-1"}, wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseFaults(tt.ann)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: parseFaults error = %v, wantErr %v", tt.name, err, tt.wantErr)
			continue
		}
		if err == nil && got != tt.want {
			t.Errorf("%s: parseFaults = %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestCutWriter(t *testing.T) {
	tests := []struct {
		name    string
		header  string
		writes  []string
		claim   bool
		want    string
		wantCut bool
	}{
		{name: "under the limit", writes: []string{"abc", "de"}, claim: true, want: "abcde"},
		{name: "cut inside a write", writes: []string{"abc", "defgh", "ij"}, claim: true, want: "abcdef", wantCut: true},
		{name: "cut at a write boundary", writes: []string{"abcdef", "g"}, claim: true, want: "abcdef", wantCut: true},
		{name: "spared session goes on", writes: []string{"abc", "defgh", "ij"}, claim: false, want: "abcdefghij"},
		// The header ends in the second write: six bytes after it are passed.
		{name: "counted after its header", header: "dec\n", writes: []string{"abcd", "e\ndec\nxyz", "uvwq"}, claim: true,
			want: "abcde\ndec\nxyzuvw", wantCut: true},
		{name: "header never seen", header: "dec\n", writes: []string{"abcdefgh", "ijkl"}, claim: true, want: "abcdefghijkl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cuts := 0
			w := &cutWriter{w: &out, limit: 6, claim: func() bool { return tt.claim }, cut: func() { cuts++ }}
			if tt.header != "" {
				w.header = newMarkerScanner(tt.header)
			}
			var err error
			for _, s := range tt.writes {
				if _, err = w.Write([]byte(s)); err != nil {
					break
				}
			}
			if out.String() != tt.want {
				t.Errorf("passed %q, want %q", out.String(), tt.want)
			}
			if tt.wantCut != errors.Is(err, errCut) || tt.wantCut != w.wasCut() || (tt.wantCut && cuts != 1) {
				t.Errorf("cut: err %v, wasCut %v, cut calls %d; want cut %v", err, w.wasCut(), cuts, tt.wantCut)
			}
		})
	}
}

func TestMarkerScanner(t *testing.T) {
	tests := []struct {
		marker string
		pieces []string
		want   []int // scan's answer for each piece
	}{
		{marker: "aab", pieces: []string{"aaab"}, want: []int{4}},                               // a failed match restarts inside itself
		{marker: "decide\n", pieces: []string{"has tar\ndec", "ide\nrest"}, want: []int{-1, 4}}, // across pieces
		{marker: "xy", pieces: []string{"xxz", "yxy"}, want: []int{-1, 3}},
	}
	for _, tt := range tests {
		m := newMarkerScanner(tt.marker)
		for i, p := range tt.pieces {
			if got := m.scan([]byte(p)); got != tt.want[i] {
				t.Errorf("%q: scan(%q) = %d, want %d", tt.marker, p, got, tt.want[i])
			}
		}
	}
}

func TestPassHeaderConsumesNothingAfterIt(t *testing.T) {
	in := strings.NewReader("go none files md5sum 123\nARCHIVE")
	var out bytes.Buffer
	if !passHeader(&out, in, "\n") || out.String() != "go none files md5sum 123\n" {
		t.Fatalf("passHeader passed %q", out.String())
	}
	if rest, _ := io.ReadAll(in); string(rest) != "ARCHIVE" {
		t.Errorf("left %q, want the archive untouched", rest)
	}
	if passHeader(io.Discard, strings.NewReader("no newline"), "\n") {
		t.Error("passHeader found a header that is not there")
	}
}

func TestThrottle(t *testing.T) {
	clock := time.Now()
	var slept time.Duration
	th := &throttle{rate: 100, start: clock, now: func() time.Time { return clock.Add(slept) }, sleep: func(d time.Duration) { slept += d }}
	var out bytes.Buffer
	w := &throttledWriter{w: &out, t: th}
	if _, err := w.Write(bytes.Repeat([]byte("x"), 250)); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 250 {
		t.Errorf("wrote %d bytes, want 250", out.Len())
	}
	// 250 bytes at 100 B/s take 2.5 s.
	if slept != 2500*time.Millisecond {
		t.Errorf("slept %v for 250 bytes at 100 B/s", slept)
	}

	th2 := &throttle{rate: 50, start: time.Now(), now: time.Now, sleep: func(time.Duration) {}}
	r := &throttledReader{r: strings.NewReader(strings.Repeat("y", 100)), t: th2}
	buf := make([]byte, 64)
	n, err := r.Read(buf)
	if err != nil || n != th2.chunk() {
		t.Errorf("first read = %d, %v; want one chunk of %d", n, err, th2.chunk())
	}
	rest, _ := io.ReadAll(r)
	if n+len(rest) != 100 {
		t.Errorf("read %d bytes in all, want 100", n+len(rest))
	}
}
