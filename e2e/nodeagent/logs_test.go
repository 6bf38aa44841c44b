package nodeagent

import (
	"bytes"
	"context"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// fakeClock advances one second per reading.
func fakeClock() func() time.Time {
	n := 0
	return func() time.Time {
		n++
		return t0.Add(time.Duration(n) * time.Second)
	}
}

func TestPumpLogWritesCRIEntries(t *testing.T) {
	var buf bytes.Buffer
	lw := &logWriter{w: &buf, now: fakeClock()}
	long := strings.Repeat("x", maxLogLine+10)
	var teed bytes.Buffer
	input := "one\ntwo\n" + long + "\nlast-no-newline"
	if err := pumpLog(strings.NewReader(input), lw, streamStderr, func(b []byte) { teed.Write(b) }); err != nil {
		t.Fatalf("pumpLog: %v", err)
	}
	if teed.String() != input {
		t.Errorf("tee got %q, want the raw input", teed.String())
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{
		"2026-11-26T12:00:01Z stderr F one",
		"2026-11-26T12:00:02Z stderr F two",
		"2026-11-26T12:00:03Z stderr P " + long[:maxLogLine],
		"2026-11-26T12:00:04Z stderr F " + long[maxLogLine:],
		"2026-11-26T12:00:05Z stderr P last-no-newline",
	}
	if len(lines) != len(want) {
		t.Fatalf("got %d entries, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i := range want {
		if lines[i] != want[i] {
			t.Errorf("entry %d = %.60q, want %.60q", i, lines[i], want[i])
		}
	}
}

func TestParseLogEntry(t *testing.T) {
	tests := []struct {
		line    string
		want    logEntry
		wantErr bool
	}{
		{line: "2026-11-26T12:00:01.5Z stdout F hello world\n", want: logEntry{time: t0.Add(1500 * time.Millisecond), stream: "stdout", full: true, content: []byte("hello world")}},
		{line: "2026-11-26T12:00:01Z stderr P part", want: logEntry{time: t0.Add(time.Second), stream: "stderr", content: []byte("part")}},
		{line: "2026-11-26T12:00:01Z stdout F", want: logEntry{time: t0.Add(time.Second), stream: "stdout", full: true}},
		{line: "garbage", wantErr: true},
		{line: "yesterday stdout F x", wantErr: true},
	}
	for _, tt := range tests {
		got, err := parseLogEntry([]byte(tt.line))
		if (err != nil) != tt.wantErr {
			t.Errorf("parseLogEntry(%q) error = %v, wantErr %v", tt.line, err, tt.wantErr)
			continue
		}
		if err == nil && (!got.time.Equal(tt.want.time) || got.stream != tt.want.stream || got.full != tt.want.full || string(got.content) != string(tt.want.content)) {
			t.Errorf("parseLogEntry(%q) = %+v, want %+v", tt.line, got, tt.want)
		}
	}
}

func TestParseLogOptions(t *testing.T) {
	now := t0
	tests := []struct {
		query   string
		want    logOptions
		wantErr bool
	}{
		{query: "", want: logOptions{tailLines: -1}},
		{query: "follow=true&previous=true&timestamps=true&tailLines=3&limitBytes=10", want: logOptions{follow: true, previous: true, timestamps: true, tailLines: 3, limitBytes: 10}},
		{query: "sinceSeconds=60", want: logOptions{tailLines: -1, since: now.Add(-time.Minute)}},
		{query: "sinceTime=2026-11-26T11:00:00Z", want: logOptions{tailLines: -1, since: now.Add(-time.Hour)}},
		{query: "stream=Stderr", want: logOptions{tailLines: -1, stream: streamStderr}},
		{query: "tailLines=-2", wantErr: true},
		{query: "limitBytes=0", wantErr: true},
		{query: "follow=maybe", wantErr: true},
		{query: "stream=both", wantErr: true},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		got, err := parseLogOptions(q, now)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseLogOptions(%q) error = %v, wantErr %v", tt.query, err, tt.wantErr)
			continue
		}
		if err == nil && (got.follow != tt.want.follow || got.previous != tt.want.previous || got.timestamps != tt.want.timestamps ||
			got.tailLines != tt.want.tailLines || got.limitBytes != tt.want.limitBytes || !got.since.Equal(tt.want.since) || got.stream != tt.want.stream) {
			t.Errorf("parseLogOptions(%q) = %+v, want %+v", tt.query, got, tt.want)
		}
	}
}

func writeTestLog(t *testing.T) string {
	t.Helper()
	var buf bytes.Buffer
	lw := &logWriter{w: &buf, now: fakeClock()}
	for i, l := range []struct {
		stream, text string
		full         bool
	}{{"stdout", "a", true}, {"stderr", "b", true}, {"stdout", "c-", false}, {"stdout", "c", true}, {"stdout", "d", true}} {
		if err := lw.writeEntry(l.stream, []byte(l.text), l.full); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	path := filepath.Join(t.TempDir(), "0.log")
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadLog(t *testing.T) {
	path := writeTestLog(t)
	tests := []struct {
		name string
		opts logOptions
		want string
	}{
		{"all", logOptions{tailLines: -1}, "a\nb\nc-c\nd\n"},
		{"tail 2", logOptions{tailLines: 2}, "c\nd\n"},
		{"tail 0", logOptions{tailLines: 0}, ""},
		{"tail more than there is", logOptions{tailLines: 10}, "a\nb\nc-c\nd\n"},
		{"since", logOptions{tailLines: -1, since: t0.Add(3 * time.Second)}, "c-c\nd\n"},
		{"stderr only", logOptions{tailLines: -1, stream: streamStderr}, "b\n"},
		{"stdout tail 1", logOptions{tailLines: 1, stream: streamStdout}, "d\n"},
		{"limit bytes", logOptions{tailLines: -1, limitBytes: 3}, "a\nb"},
		{"timestamps", logOptions{tailLines: 1, timestamps: true}, "2026-11-26T12:00:05Z d\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := readLog(context.Background(), path, tt.opts, &out, func() bool { return true }); err != nil {
				t.Fatalf("readLog: %v", err)
			}
			if out.String() != tt.want {
				t.Errorf("readLog = %q, want %q", out.String(), tt.want)
			}
		})
	}
}

func TestReadLogFollowsUntilFinished(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "0.log")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lw := &logWriter{w: f, now: fakeClock()}
	if err := lw.writeEntry(streamStdout, []byte("first"), true); err != nil {
		t.Fatal(err)
	}
	finished := make(chan struct{})
	go func() {
		time.Sleep(150 * time.Millisecond)
		_ = lw.writeEntry(streamStdout, []byte("second"), true)
		close(finished)
	}()
	var out bytes.Buffer
	isFinished := func() bool {
		select {
		case <-finished:
			return true
		default:
			return false
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := readLog(ctx, path, logOptions{follow: true, tailLines: -1}, &out, isFinished); err != nil {
		t.Fatalf("readLog: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatal("follow did not stop when the run finished")
	}
	if out.String() != "first\nsecond\n" {
		t.Errorf("followed %q, want %q", out.String(), "first\nsecond\n")
	}
}
