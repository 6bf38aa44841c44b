package transfer

import "testing"

func TestChooseCompression(t *testing.T) {
	const big = 100 << 20
	busybox := caps{gzip: true, lzop: true}
	// Figures measured on the benchmark machine (docs/benchmarks.md):
	// busybox lzop compresses source text at ~270 MB/s, gzip -1 at ~17;
	// the plugin compresses at ~100-200 MB/s a core; loopback carries
	// ~150 MB/s, the limited link 25.
	down := func(codec string, ratio, link, rate float64) linkChoice {
		return linkChoice{size: big, codec: codec, ratio: ratio, linkRate: link, senderRate: rate}
	}
	up := func(ratio, link, rate float64) linkChoice {
		return linkChoice{upload: true, size: big, codec: compressGzip, ratio: ratio, linkRate: link, senderRate: rate}
	}
	tests := []struct {
		name    string
		mode    string
		remote  caps
		l       linkChoice
		want    string
		wantErr bool
	}{
		{"none", compressNone, busybox, down(compressLZOP, 0.3, 1e6, 270e6), compressNone, false},
		{"gzip forced", compressGzip, busybox, linkChoice{}, compressGzip, false},
		{"gzip forced without gzip", compressGzip, caps{}, linkChoice{}, "", true},
		{"text down the 25 MB/s link with lzop", compressAuto, busybox, down(compressLZOP, 0.39, 25e6, 270e6), compressLZOP, false},
		{"text down the 25 MB/s link with busybox gzip", compressAuto, busybox, down(compressGzip, 0.24, 25e6, 17e6), compressNone, false},
		{"text down a 5 MB/s link with busybox gzip", compressAuto, busybox, down(compressGzip, 0.24, 5e6, 17e6), compressGzip, false},
		{"text down loopback", compressAuto, busybox, down(compressLZOP, 0.39, 150e6, 270e6), compressNone, false},
		{"random data down a slow link", compressAuto, busybox, down(compressLZOP, 1.0, 5e6, 270e6), compressNone, false},
		{"text up the 25 MB/s link", compressAuto, busybox, up(0.3, 25e6, 300e6), compressGzip, false},
		{"text up loopback", compressAuto, busybox, up(0.3, 150e6, 300e6), compressNone, false},
		{"text up with a slow local CPU", compressAuto, busybox, up(0.3, 25e6, 30e6), compressNone, false},
		{"random data up", compressAuto, busybox, up(0.99, 5e6, 300e6), compressNone, false},
		{"small", compressAuto, busybox, linkChoice{size: 1 << 20, codec: compressLZOP, ratio: 0.2, linkRate: 5e6, senderRate: 270e6}, compressNone, false},
		{"link not sampled", compressAuto, busybox, down(compressLZOP, 0.2, 0, 270e6), compressNone, false},
		{"compressor not timed", compressAuto, busybox, down(compressLZOP, 0.2, 5e6, 0), compressNone, false},
		{"no compressor", compressAuto, caps{}, down("", 0, 5e6, 0), compressNone, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseCompression(tt.mode, tt.remote, tt.l)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("chooseCompression() = %q, %v; want %q, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
