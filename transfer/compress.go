package transfer

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/pgzip"
)

// Compression modes of --compress, and the codecs a stream may use.
const (
	compressAuto = "auto"
	compressGzip = "gzip"
	compressNone = "none"
	compressLZOP = "lzop" // downloads only, chosen by auto
)

// What --compress auto weighs (docs/benchmarks.md has the measurements). A
// stream compressed to ratio r runs at min(C, D, L/r) for the sender's
// compressor speed C, the receiver's decompressor speed D and the link's
// speed L (all in bytes of uncompressed data a second), against L plain. L
// comes from the probe's link sample; the container's C from timing its
// compressor on the probe's data sample, the plugin's from timing its own on
// the upload's first files (times the cores it compresses on). The model
// leaves out that compression takes CPU from the transfer itself (on the
// benchmark machine's 2 cores the API server, the node agent and both tars
// use most of it: over loopback, lzop's CPU in the container costs about
// what the bytes it saves would have cost the channel), hence the margin:
// a codec must promise compressMargin times the plain rate, which only a
// link slower than the CPUs gives.
const (
	sampleBytes = 1 << 20 // link sample sent by the probe; the link proxy's burst is 64 KiB
	// verifySampleBytes: the sample when only how to verify depends on
	// it, which asks no more than slower or faster than streamSumLinkRate.
	verifySampleBytes = 512 << 10
	smallTransfer     = 8 << 20 // below this the choice costs more than it saves
	maxRatio          = 0.8     // compressed/raw above this: not worth it
	compressMargin    = 2

	// The container's decompressors, which the probe does not time:
	// busybox gunzip gives 150 MB/s of source text on one idle core of the
	// benchmark machine; counted at two thirds for the load of a transfer.
	containerGunzip = 100e6
	// The plugin's (Go) decompressors, on one core: far above any link.
	localGunzip = 250e6
	localUnlzop = 500e6
)

// linkChoice is what auto knows when it chooses.
type linkChoice struct {
	upload     bool
	size       int64   // bytes to move
	ratio      float64 // compressed/raw of a sample; 0 when unknown
	codec      string  // the codec the ratio was measured with
	linkRate   float64 // bytes/s of the exec channel; 0 when not sampled
	senderRate float64 // bytes/s of the sender's compressor; 0 when not timed
}

// chooseCompression decides --compress for a stream: compressNone,
// compressGzip or compressLZOP. remote lists the container's tools.
func chooseCompression(mode string, remote caps, l linkChoice) (string, error) {
	switch mode {
	case compressNone:
		return compressNone, nil
	case compressGzip:
		if !remote.gzip {
			return "", fmt.Errorf("--compress=gzip: the container has no gzip")
		}
		return compressGzip, nil
	case compressLZOP: // not a flag value: the tests' way to ask for it
		if l.upload || !remote.lzop {
			return "", fmt.Errorf("lzop: only for downloads from a container that has it")
		}
		return compressLZOP, nil
	}
	if l.codec == "" || l.ratio == 0 || l.ratio > maxRatio || l.size < smallTransfer || l.linkRate == 0 || l.senderRate == 0 {
		return compressNone, nil
	}
	if min(l.senderRate, receiverRate(l.upload, l.codec), l.linkRate/l.ratio) >= compressMargin*l.linkRate {
		return l.codec, nil
	}
	return compressNone, nil
}

// receiverRate is the speed of the receiver's decompressor for codec.
func receiverRate(upload bool, codec string) float64 {
	switch {
	case upload:
		return containerGunzip
	case codec == compressLZOP:
		return localUnlzop
	}
	return localGunzip
}

// compressionCanWin: whether chooseCompression can choose codec over a
// link of linkRate bytes/s at all, whatever the data's ratio and the
// sender's speed: the receiver's decompressor bounds the stream. The probe
// measures a download's ratio only when it can.
func compressionCanWin(upload bool, codec string, linkRate float64) bool {
	return codec != "" && linkRate > 0 && receiverRate(upload, codec) >= compressMargin*linkRate
}

// localRatio estimates how well an upload compresses, and how fast this
// machine compresses it, from the first 32 KiB of up to 64 files, as the
// probe does for downloads. The rate counts every core newUploadGzip uses.
func localRatio(p *packer) (ratio, rate float64) {
	var raw, packed countWriter
	fw, _ := flate.NewWriter(&packed, flate.BestSpeed)
	files := 0
	buf := make([]byte, 32<<10)
	var spent time.Duration
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
		start := time.Now()
		_, _ = fw.Write(buf[:n])
		spent += time.Since(start)
		return nil
	})
	start := time.Now()
	_ = fw.Close()
	spent += time.Since(start)
	if raw == 0 {
		return 0, 0
	}
	ratio = float64(packed) / float64(raw)
	if spent > 0 {
		rate = float64(raw) / spent.Seconds() * float64(gzipWorkers())
	}
	return ratio, rate
}

// gzipWorkers is how many cores newUploadGzip compresses on.
func gzipWorkers() int {
	return max(1, min(runtime.GOMAXPROCS(0), 8))
}

// newUploadGzip compresses an upload on every core (klauspost/pgzip: blocks
// of 1 MiB deflated in parallel, each primed with the previous one's tail,
// in one gzip member any gunzip reads), so that the container only
// decompresses, which costs it least. Two blocks per core are in flight:
// memory stays flat (at most 16 MiB), and the cores never wait for the
// writer. Level 1: beyond it, the link must be slower than any we measured
// for the better ratio to pay for the slower compression.
func newUploadGzip(w io.Writer) *pgzip.Writer {
	zw, _ := pgzip.NewWriterLevel(w, pgzip.BestSpeed) // a valid level: no error
	_ = zw.SetConcurrency(1<<20, 2*gzipWorkers())     // valid sizes: no error
	return zw
}

type countWriter int64

func (c *countWriter) Write(b []byte) (int, error) {
	*c += countWriter(len(b))
	return len(b), nil
}
