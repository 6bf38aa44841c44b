package transfer

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/transfer/untar"
)

// remote runs the scripts of scripts.go in one container.
type remote struct {
	exec      podexec.Executor
	container podexec.Container
	// workingDir anchors relative remote paths; empty means the exec's
	// own directory.
	workingDir string
}

// run runs a script; a failure is a *podexec.ScriptError that says where,
// and in the container's words what, went wrong.
func (r *remote) run(ctx context.Context, script string, args []string, in io.Reader, out io.Writer) error {
	return podexec.RunBulkScript(ctx, r.exec, r.container, script, args, in, out)
}

// caps is what the probe found.
type caps struct {
	tar, gzip, lzop, md5sum, sha256sum, find, xargs, tee, mkfifo, gnuTar bool
	kind                                                                 string  // dir, file, other, none (symlinks followed)
	link                                                                 bool    // the path itself is a symlink
	version                                                              string  // its landed upload's version ID, when the link is ours
	size                                                                 int64   // bytes, from du; 0 if unknown
	count                                                                int     // a directory's entries, up to the count asked for; 0 if not counted
	ratio                                                                float64 // compressed/raw of a sample with codec
	codec                                                                string  // compressGzip or compressLZOP
	compressRate                                                         float64 // bytes/s codec compressed the sample at; 0: not timed
	linkBytesPerSec                                                      float64 // 0 when not sampled
}

// probeRequest is what a transfer script's probe (probeFunc) measures of
// path: its size, the ratio (offered when the link leaves compression a
// chance: compressionCanWin), and a link sample of sample bytes, timed
// from first to last, when the path holds at least sampleMin bytes.
type probeRequest struct {
	path        string
	size, ratio bool
	sample      int
	sampleMin   int64
	count       int // > 0: count a directory's entries, up to this many
}

// args are probe's positional parameters.
func (q probeRequest) args() []string {
	args := []string{q.path, "nosize", "noratio", strconv.Itoa(q.sample - q.sample%sampleBlock),
		strconv.FormatInt(q.sampleMin>>10, 10), strconv.Itoa(int(maxRatio * 100)), strconv.Itoa(q.count)}
	if q.size {
		args[1] = "size"
	}
	if q.ratio {
		args[2] = "ratio"
	}
	return args
}

// startProbed starts script (a transfer script that runs probe with q's
// arguments after args) and reads the probe. It returns what the
// container has, with the session waiting for the plugin's decision on
// its stdin. When the script needs no tar (none: the container has no sh
// or tar), it has stopped the session.
func (r *remote) startProbed(ctx context.Context, script string, args []string, q probeRequest) (caps, *session, error) {
	s := r.start(ctx, script, append(args, q.args()...))
	var c caps
	asked, perr := parseProbe(s.out, &c, q.sample-q.sample%sampleBlock, s.stdin)
	if !asked {
		s.stdin.Close()
		s.stdout.CloseWithError(errors.New("probe stopped"))
		err := <-s.done
		switch {
		case err != nil && podexec.ExecutableMissing(err):
			return c, nil, fmt.Errorf("%w (%v)", ErrNoTar, err)
		case err != nil:
			return c, nil, fmt.Errorf("probe %s: %w", q.path, err)
		case perr != nil:
			return c, nil, &streamError{fmt.Errorf("probe %s: %w", q.path, perr)}
		}
		// Success without the probe's end: the stream was cut on the way.
		return c, nil, &streamError{fmt.Errorf("probe %s: the container's answer ended early", q.path)}
	}
	if !c.tar {
		s.stop()
		return c, nil, ErrNoTar
	}
	return c, s, nil
}

// sampleBlock is the size of the link sample's writes (probeFunc), of
// which a sample is a whole number.
const sampleBlock = 64 << 10

// parseProbe reads probe's output (probeFunc) into c, up to "decide",
// after which the script waits for the plugin's decision: whether it got
// there. The link sample is sample bytes; answer gets the script's line of
// stdin after the sample when the script asks (it offered the ratio).
func parseProbe(br *bufio.Reader, c *caps, sample int, answer io.Writer) (decide bool, err error) {
	var readStart, ratioStart time.Time
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			return false, nil
		}
		if err != nil && err != io.EOF {
			return false, err
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "has":
			if len(f) == 2 {
				switch f[1] {
				case "tar":
					c.tar = true
				case "gzip":
					c.gzip = true
				case "lzop":
					c.lzop = true
				case "md5sum":
					c.md5sum = true
				case "sha256sum":
					c.sha256sum = true
				case "find":
					c.find = true
				case "xargs":
					c.xargs = true
				case "tee":
					c.tee = true
				case "mkfifo":
					c.mkfifo = true
				case "gnutar":
					c.gnuTar = true
				}
			}
		case "type":
			if len(f) == 2 {
				c.kind = f[1]
			}
		case "link":
			c.link = true
			if len(f) == 3 && f[1] == "ours" && isVersionID(f[2]) {
				c.version = f[2]
			}
		case "size":
			if len(f) == 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				c.size = kb * 1024
			}
		case "count":
			if len(f) == 2 {
				c.count, _ = strconv.Atoi(f[1])
			}
		case "ratio-read":
			readStart = time.Now()
		case "ratio-start":
			ratioStart = time.Now()
		case "ratio":
			if len(f) == 4 && (f[3] == compressGzip || f[3] == compressLZOP) {
				raw, _ := strconv.ParseFloat(f[1], 64)
				packed, _ := strconv.ParseFloat(f[2], 64)
				if raw > 0 {
					c.ratio, c.codec = packed/raw, f[3]
					if !readStart.IsZero() && !ratioStart.IsZero() {
						c.compressRate = compressorRate(raw, ratioStart.Sub(readStart), time.Since(ratioStart))
					}
				}
			}
		case "sample":
			c.linkBytesPerSec = timeSample(br, sample)
			if len(f) == 2 && f[1] == "ask" {
				reply := "skip\n"
				if compressionCanWin(false, c.probeCodec(), c.linkBytesPerSec) {
					reply = "ratio\n"
				}
				if _, err := io.WriteString(answer, reply); err != nil {
					return false, err
				}
			}
		case "decide":
			return true, nil
		}
	}
}

// compressorRate estimates the container's compressor speed (bytes of
// input a second) from the probe's two runs over the same sample: read
// alone (readOnly) and read then compressed (compressed). Both pay the
// sample's start-up (find, xargs and cat for a tree: about 20 ms here,
// more than lzop takes for the whole MiB), which a real stream pays once,
// so the read-only run is subtracted. A difference of two short timings
// is noisy, so the estimate is held to at most 4x the uncorrected rate:
// a tree's lzop measures 26-39 MB/s uncorrected and 105-260 MB/s
// corrected on the benchmark machine (270 MB/s on an idle core), which
// keeps a container whose CPU is throttled measured as slow.
func compressorRate(raw float64, readOnly, compressed time.Duration) float64 {
	if compressed <= 0 {
		return 0
	}
	spent := max(compressed-readOnly, compressed/4)
	return raw / spent.Seconds()
}

// isVersionID: the IDs this plugin gives versions (hex), and nothing a
// hostile container could slip a path through.
func isVersionID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil
}

// timeSample reads the n bytes of the link sample and measures from the
// first to the last, so the exec's start-up latency does not count.
func timeSample(r io.Reader, n int) float64 {
	var first [1]byte
	if n < sampleBlock {
		return 0
	}
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return 0
	}
	start := time.Now()
	got, _ := io.CopyN(io.Discard, r, int64(n-1))
	d := time.Since(start)
	if d <= 0 || got < int64(n-1) {
		return 0
	}
	return float64(n) / d.Seconds()
}

// probeCodec is the codec probe (probeFunc) measures the ratio with: lzop when
// the container has it, else gzip.
func (c *caps) probeCodec() string {
	switch {
	case c.lzop:
		return compressLZOP
	case c.gzip:
		return compressGzip
	}
	return ""
}

// manifest maps tree paths (relative to the top entry) to the checksum the
// container computed.
type manifest map[string][32]byte

func (r *remote) manifest(ctx context.Context, dir, name, prefix string, d *digest) (manifest, error) {
	pr, pw := io.Pipe()
	parsed := make(chan manifestResult, 1)
	go func() {
		m, err := parseSums(pr, prefix, d)
		_, _ = io.Copy(io.Discard, pr)
		parsed <- manifestResult{m, err}
	}()
	err := r.run(ctx, manifestScript, []string{dir, name, d.tool}, nil, pw)
	pw.CloseWithError(err)
	res := <-parsed
	return res.checked(err, d, path.Join(dir, name))
}

// awaitedManifest lists the sums of the tree an awaitedManifestScript
// was started on, once told which (version "": the path's own), or
// returns errAwaitedEnded.
func awaitedManifest(ctx context.Context, a *awaited, version, where, prefix string, d *digest) (manifest, error) {
	if version == "" {
		version = "-"
	}
	if err := a.goOn(ctx, "sums "+d.tool+" "+version); err != nil {
		return nil, err
	}
	m, perr := parseSums(a.sess.out, prefix, d)
	return manifestResult{m, perr}.checked(a.release(), d, where)
}

// compare lists, sorted, the tree paths whose bytes differ on the two sides
// or that one side lacks.
func compare(local map[string][32]byte, remote manifest) []string {
	var differ []string
	for rel, sum := range remote {
		if got, ok := local[rel]; !ok || got != sum {
			differ = append(differ, rel)
		}
	}
	for rel := range local {
		if _, ok := remote[rel]; !ok {
			differ = append(differ, rel)
		}
	}
	sort.Strings(differ)
	return differ
}

type manifestResult struct {
	m   manifest
	err error
}

// checked is the manifest of where, read as r, from an exec that ended
// with execErr: the exec's failure is the cause, else the listing's.
func (r manifestResult) checked(execErr error, d *digest, where string) (manifest, error) {
	if execErr != nil {
		return nil, fmt.Errorf("%s of %s: %w", d.name, where, execErr)
	}
	if r.err != nil {
		return nil, fmt.Errorf("%s of %s: %w", d.name, where, r.err)
	}
	return r.m, nil
}

// parseSums reads sumFiles' output: batches of a count, that many names
// each ended by a NUL, then the checksum line for each name in turn. The
// line is "<hex> <space or *><name>\n" with the name as given (busybox),
// or, from GNU's tools when the name holds a backslash, newline or
// carriage return, a backslash first and the name escaped. Each name is
// known before its line, so the parser checks the line against it instead
// of splitting on newlines a name may hold.
func parseSums(r io.Reader, prefix string, d *digest) (manifest, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	m := manifest{}
	for {
		count, err := br.ReadString('\n')
		if err == io.EOF && count == "" {
			return m, nil
		}
		n, cerr := strconv.Atoi(strings.TrimSuffix(count, "\n"))
		if err != nil || cerr != nil || n < 0 {
			return nil, fmt.Errorf("unreadable %s listing (batch header %q)", d.name, count)
		}
		names := make([]string, n)
		for i := range names {
			name, err := br.ReadString(0)
			if err != nil {
				return nil, fmt.Errorf("unreadable %s listing: it ends in the middle of a batch of names", d.name)
			}
			names[i] = strings.TrimSuffix(name, "\x00")
		}
		for _, name := range names {
			sum, err := readSumLine(br, name, d)
			if err != nil {
				return nil, err
			}
			rel, err := untar.EntryPath(name, prefix)
			if err != nil {
				return nil, fmt.Errorf("%s listing names %q: %w", d.name, name, err)
			}
			m[rel] = sum
		}
	}
}

func readSumLine(br *bufio.Reader, name string, d *digest) ([32]byte, error) {
	var sum [32]byte
	bad := func() ([32]byte, error) {
		return sum, fmt.Errorf("no %s for %q in the container's listing (unreadable, or %s could not read it)", d.name, name, d.tool)
	}
	first, err := br.Peek(1)
	if err != nil {
		return bad()
	}
	candidates := []string{name}
	if first[0] == '\\' {
		_, _ = br.Discard(1)
		esc := strings.NewReplacer(`\`, `\\`, "\n", `\n`)
		escCR := strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\r", `\r`)
		candidates = []string{escCR.Replace(name), esc.Replace(name)}
	}
	h := d.hexLen
	head, err := br.Peek(h + 2)
	if err != nil || (head[h] != ' ') || (head[h+1] != ' ' && head[h+1] != '*') {
		return bad()
	}
	if _, err := hex.Decode(sum[:], head[:h]); err != nil {
		return bad()
	}
	for _, c := range candidates {
		want := h + 2 + len(c) + 1
		line, err := br.Peek(want)
		if err == nil && string(line[h+2:want-1]) == c && line[want-1] == '\n' {
			_, _ = br.Discard(want)
			return sum, nil
		}
	}
	return bad()
}

// list returns every name under name in dir, as the container sees it.
func (r *remote) list(ctx context.Context, dir, name string) ([]string, error) {
	var out bytes.Buffer
	if err := r.run(ctx, listScript, []string{dir, name}, nil, &out); err != nil {
		return nil, fmt.Errorf("list %s: %w", path.Join(dir, name), err)
	}
	var names []string
	for _, n := range strings.Split(out.String(), "\x00") {
		if n != "" {
			names = append(names, n)
		}
	}
	return names, nil
}

// abort ends the receiving processes of an upload's staging directory and
// removes it, even when ctx is already cancelled: an interrupted upload
// must leave nothing behind.
func (r *remote) abort(ctx context.Context, staging string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return r.run(ctx, abortScript, []string{staging}, nil, nil)
}

// ErrNoTar is what Upload and Download fail with when the container cannot
// run the transfer itself (no sh or no tar, as in a distroless image): a
// helper container that mounts its volumes may.
var ErrNoTar = errors.New("the container has no sh or tar")
