package artifacts

import "testing"

func TestChooseGzip(t *testing.T) {
	const big = 100 << 20
	tests := []struct {
		name        string
		mode        string
		remoteGzip  bool
		upload      bool
		size        int64
		ratio, rate float64
		want        bool
		wantErr     bool
	}{
		{name: "none", mode: compressNone, remoteGzip: true, size: big, ratio: 0.2, rate: 1e6},
		{name: "gzip forced", mode: compressGzip, remoteGzip: true, want: true},
		{name: "gzip without gzip", mode: compressGzip, wantErr: true},
		{name: "auto loopback text", mode: compressAuto, remoteGzip: true, size: big, ratio: 0.2, rate: 100e6},
		{name: "auto 25 MB/s link text", mode: compressAuto, remoteGzip: true, size: big, ratio: 0.2, rate: 25e6},
		{name: "auto slow link text down", mode: compressAuto, remoteGzip: true, size: big, ratio: 0.2, rate: 5e6, want: true},
		{name: "auto slow link text up", mode: compressAuto, remoteGzip: true, upload: true, size: big, ratio: 0.2, rate: 9e6, want: true},
		{name: "auto slow link random", mode: compressAuto, remoteGzip: true, size: big, ratio: 1.0, rate: 5e6},
		{name: "auto small", mode: compressAuto, remoteGzip: true, size: 1 << 20, ratio: 0.2, rate: 5e6},
		{name: "auto no gzip", mode: compressAuto, size: big, ratio: 0.2, rate: 5e6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := chooseGzip(tt.mode, tt.remoteGzip, tt.upload, tt.size, tt.ratio, tt.rate)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("chooseGzip() = %v, %v; want %v, error %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}
