package artifacts

import (
	"compress/flate"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// Compression modes of --compress.
const (
	compressAuto = "auto"
	compressGzip = "gzip"
	compressNone = "none"
)

// Figures behind --compress auto (docs/benchmarks.md has the
// measurements). gzip raises throughput only where the link, not the
// compressor, is the limit, and only for data that shrinks: with ratio
// r < 1 a compressed transfer runs at min(C, L/r), which beats L exactly
// when the compressor speed C exceeds the link speed L. On an idle core
// the container's busybox gzip -1 does ~33 MB/s and Go's BestSpeed ~87 MB/s
// on source text, but on the benchmark machine (2 cores shared by the API
// server, the node agent, both tars and other work) gzip made every case
// slower, the 25 MB/s link included: compression shares the cores the
// transfer already saturates. So auto compresses only links far slower
// than that: below 8 MB/s (down) and 10 MB/s (up).
const (
	sampleBytes          = 1 << 20 // link sample sent by the probe; the link proxy's burst is 64 KiB
	smallTransfer        = 8 << 20 // below this the choice costs more than it saves
	maxRatio             = 0.8     // compressed/raw above this: not worth it
	downloadGzipLinkRate = 8e6     // bytes/s
	uploadGzipLinkRate   = 10e6
)

// chooseGzip decides --compress. ratio and rate are 0 when unknown.
func chooseGzip(mode string, remoteGzip, upload bool, size int64, ratio, rate float64) (bool, error) {
	switch mode {
	case compressNone:
		return false, nil
	case compressGzip:
		if !remoteGzip {
			return false, fmt.Errorf("--compress=gzip: the container has no gzip")
		}
		return true, nil
	}
	if !remoteGzip || ratio == 0 || ratio > maxRatio {
		return false, nil
	}
	if size < smallTransfer || rate == 0 {
		return false, nil
	}
	limit := downloadGzipLinkRate
	if upload {
		limit = uploadGzipLinkRate
	}
	return rate < limit, nil
}

// localRatio estimates how well an upload compresses from the first 32 KiB
// of up to 64 files, as the probe does for downloads.
func localRatio(p *packer) float64 {
	var raw, packed countWriter
	fw, _ := flate.NewWriter(&packed, flate.BestSpeed)
	files := 0
	buf := make([]byte, 32<<10)
	_ = p.walk(func(rel string, fi os.FileInfo) error {
		if !fi.Mode().IsRegular() {
			return nil
		}
		if files++; files > 64 || raw >= 1<<20 {
			return io.EOF
		}
		f, err := os.Open(filepath.Join(p.src, filepath.FromSlash(rel)))
		if err != nil {
			return nil
		}
		defer f.Close()
		n, _ := io.ReadFull(f, buf)
		raw += countWriter(n)
		_, _ = fw.Write(buf[:n])
		return nil
	})
	_ = fw.Close()
	if raw == 0 {
		return 0
	}
	return float64(packed) / float64(raw)
}

type countWriter int64

func (c *countWriter) Write(b []byte) (int, error) {
	*c += countWriter(len(b))
	return len(b), nil
}
