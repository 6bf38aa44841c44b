package transfer

import (
	"context"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/klauspost/compress/gzip"

	"github.com/kubectl-concourse/kubectl-concourse/agent/client"
	"github.com/kubectl-concourse/kubectl-concourse/podexec"
	"github.com/kubectl-concourse/kubectl-concourse/transfer/lzo"
	"github.com/kubectl-concourse/kubectl-concourse/transfer/untar"
)

// download copies remote path src into localDir/<base name of src>.
func download(ctx context.Context, rem *remote, src, localDir string, s settings) error {
	src = RemoteAbs(rem.workingDir, src)
	_, base, err := SplitRemote(src)
	if err != nil {
		return err
	}
	if err := downloadTo(ctx, rem, src, filepath.Join(localDir, base), s); err != nil {
		return fmt.Errorf("download %s into %s: %w", src, localDir, withRemedy(err))
	}
	return nil
}

// downloadTo downloads remote path src (absolute, or ./ relative) to the
// local path dest, which it replaces whole: through the agent where it
// runs (it needs an absolute path: the agent's working directory is not
// the step's), else through the scripts.
//
// The scripts probe first unless the agent is forced: a small tree goes
// through them (agentPays), and a large one, or one they cannot verify,
// through the agent.
func downloadTo(ctx context.Context, rem *remote, src, dest string, s settings) error {
	switch {
	case s.agent == agentOff:
		s.verbosef("download: through the container's shell scripts (%s=off)\n", agentEnv)
		return downloadByScripts(ctx, rem, src, dest, s, false)
	case !path.IsAbs(src):
		s.verbosef("download: through the container's shell scripts: %s is relative to a working directory the pod does not name\n", src)
		return downloadByScripts(ctx, rem, src, dest, s, false)
	case s.agent == agentAuto:
		// Without tar the agent may still run (it needs only sh).
		if err := downloadByScripts(ctx, rem, src, dest, s, true); !errors.Is(err, errAgentPays) && !errors.Is(err, ErrNoTar) {
			return err
		}
	}
	started := time.Now()
	sess, err := launchAgent(ctx, rem, "", s)
	switch {
	case err == nil:
		return downloadByAgent(ctx, rem, sess, time.Since(started), src, dest, s)
	case !errors.Is(err, client.ErrUnavailable) || s.agent == agentOnly:
		return err
	}
	s.verbosef("download: through the container's shell scripts: %v\n", err)
	return downloadByScripts(ctx, rem, src, dest, s, false)
}

// errAgentPays ends a scripts' download at its probe: the tree is one the
// agent moves faster, or verifies where the scripts cannot.
var errAgentPays = errors.New("the agent pays for its start")

// downloadByScripts downloads src to dest through the container's shell
// scripts: a probe, tar, the container's checksum tool. With agentMayPay,
// it ends at the probe with errAgentPays, having sent nothing, when
// agentPays.
func downloadByScripts(ctx context.Context, rem *remote, src, dest string, s settings, agentMayPay bool) error {
	parent, base, err := SplitRemote(src)
	if err != nil {
		return err
	}
	nonce, err := randomSuffix()
	if err != nil {
		return err
	}
	// The first attempt's checksum listing starts with the probe, and
	// waits to be told which tree and how.
	var sums *awaited
	if s.verify {
		sums = rem.startAwaited(ctx, awaitedManifestScript, []string{parent, "./" + base})
		defer func() {
			if sums != nil {
				sums.drop()
			}
		}()
	}
	// The first attempt probes and streams in one exec: the script waits
	// for this side's decision between the two.
	q := probeRequest{path: src, size: true, ratio: s.compress == compressAuto, sample: sampleBytes, sampleMin: smallTransfer}
	if agentMayPay {
		q.count = agentPaysFromEntries
	}
	c, first, err := startProbedRetrying(ctx, rem, s, downloadScript, []string{parent, "./" + base, nonce}, q)
	if err != nil {
		return err
	}
	if agentMayPay {
		if agentPays(c, s.verify) {
			first.stop()
			return errAgentPays
		}
		// A missing or odd path is said by the error that follows.
		switch c.kind {
		case "file":
			s.verbosef("download: through the container's shell scripts: a file of %d KiB costs less to send than the agent's start\n", c.size>>10)
		case "dir":
			s.verbosef("download: through the container's shell scripts: %d entries, %d KiB, cost less to send than the agent's start\n", c.count, c.size>>10)
		}
	}
	d, err := newDownloader(rem, c, src, parent, base, s)
	if err != nil {
		first.stop()
		return err
	}
	d.first, d.firstNonce = first, nonce
	d.firstSums, sums = sums, nil
	defer func() {
		if d.firstSums != nil { // not needed (no digest) or never reached
			d.firstSums.drop()
		}
	}()
	defer func() {
		if d.first != nil { // never told to stream: it ends having sent nothing
			d.first.stop()
		}
	}()
	var newHash func() hash.Hash
	if d.dig != nil {
		newHash = d.dig.newHash
	}
	return receiveLocally(dest, base, c.size, newHash, s, func(ex *untar.Extractor) error {
		d.ex = ex
		return d.run(ctx, s)
	})
}

// receiveLocally lands a tree at dest: fill extracts it, through ex, into
// a fresh directory beside dest that this download holds locked, and once
// fill says it is complete and verified, it replaces dest whole in one
// rename. A hostile archive is reported as such, ahead of what it broke.
func receiveLocally(dest, base string, size int64, newHash func() hash.Hash, s settings, fill func(ex *untar.Extractor) error) error {
	localDir := filepath.Dir(dest)
	if err := os.MkdirAll(localDir, 0o755); err != nil {
		return err
	}
	removeStaleDownloads(localDir, s.warnf)
	tmp, unlock, err := tempDirBeside(localDir)
	if err != nil {
		return err
	}
	defer func() {
		os.RemoveAll(tmp)
		unlock()
	}()
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return err
	}
	defer root.Close()

	b := s.progress.bar("downloading "+base, size)
	ex := untar.New(root, "data", base, untar.Options{PreserveOwner: s.preserveOwner, Warnf: s.warnf, Progress: b.counter(), NewHash: newHash})
	err = fill(ex)
	if err == nil || ex.Refused() > 0 {
		if ferr := ex.Finish(); ferr != nil {
			err = ferr
		}
	}
	if err == nil && s.rootByUmask {
		err = modeByUmask(root, "data")
	}
	if err == nil {
		err = land(filepath.Join(tmp, "data"), dest)
	}
	b.end(err == nil)
	return err
}

// modeByUmask gives directory name in root the mode a local mkdir gives
// (0777 less the umask, found by making one: reading the umask means
// setting it, which races with every other goroutine's file creation).
func modeByUmask(root *os.Root, name string) error {
	fi, err := root.Lstat(name)
	if err != nil || !fi.IsDir() {
		return err
	}
	probe := name + ".mode"
	if err := root.Mkdir(probe, 0o777); err != nil {
		return err
	}
	made, err := root.Lstat(probe)
	if rerr := root.Remove(probe); err == nil {
		err = rerr
	}
	if err != nil {
		return err
	}
	return root.Chmod(name, made.Mode().Perm())
}

type downloader struct {
	rem          *remote
	parent, base string
	codec        string  // compressNone, compressGzip or compressLZOP
	dig          *digest // nil: contents not verified
	version      string  // the landed upload whose tree is sent; "": none
	canResume    bool
	ex           *untar.Extractor
	// first is the first attempt's exec, waiting after its probe for the
	// decision, with its end marker's nonce; nil once taken.
	first      *session
	firstNonce string
	// firstSums is the first attempt's checksum listing, waiting since the
	// probe to be told which tree; nil once taken.
	firstSums *awaited
}

// newDownloader decides, from what the probe found of src, what to
// stream from where and how.
func newDownloader(rem *remote, c caps, src, parent, base string, s settings) (*downloader, error) {
	d := &downloader{rem: rem, parent: parent, base: base, canResume: c.find && c.xargs}
	if c.link {
		if c.version == "" {
			return nil, fmt.Errorf("%s is a symlink in the container; name its target", src)
		}
		// An upload landed there: its tree is that version's.
		d.version = c.version
		d.parent = path.Join(parent, stateDirName, base, "v."+c.version)
	}
	switch c.kind {
	case "dir", "file":
	case "none":
		return nil, fmt.Errorf("%s: no such file or directory in the container", src)
	default:
		return nil, fmt.Errorf("%s is neither a regular file nor a directory", src)
	}
	var err error
	d.codec, err = chooseCompression(s.compress, c, linkChoice{size: c.size, ratio: c.ratio, codec: c.codec,
		linkRate: c.linkBytesPerSec, senderRate: c.compressRate})
	if err != nil {
		return nil, err
	}
	if s.verify {
		if d.dig = chooseDigest(c); d.dig == nil {
			s.warnf("warning: the container has no md5sum, sha256sum or find; the contents of %s are not verified (only that the stream arrived whole)\n", src)
		}
	}
	return d, nil
}

// run streams until the tree is complete and, when verifying, equal to the
// container's sums, resuming after what a retry can fix (a broken stream,
// a failed check) with only the entries still missing or wrong. Before a
// retry it lists the source again and drops what the source no longer has,
// so that what lands is the source's tree as the last attempt found it,
// never a mix of two.
func (d *downloader) run(ctx context.Context, s settings) error {
	var names []string // nil: everything
	for attempt := 0; ; attempt++ {
		err := d.attempt(ctx, names)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !transient(err) || d.ex.Refused() > 0 {
			return err // a local failure, the container's answer, or a hostile stream
		}
		if s.retries >= 0 && attempt >= s.retries {
			if errors.Is(err, errMismatch) || errors.Is(err, errSourceChanged) {
				return fmt.Errorf("the source changed during the download: %w", err)
			}
			return err
		}
		var rerr error
		if names, rerr = d.resume(ctx); rerr != nil {
			return fmt.Errorf("%w; and resuming: %v", err, rerr)
		}
		s.warnf("warning: %v; resuming with %s (retry %d)\n", err, describe(names), attempt+1)
	}
}

// resume lists the source, drops what it no longer has and returns what a
// retry must request (nil: everything, without find and xargs to resume).
func (d *downloader) resume(ctx context.Context) ([]string, error) {
	if !d.canResume {
		return nil, d.ex.Prune(func(string) bool { return false })
	}
	listing, err := d.rem.list(ctx, d.parent, "./"+d.base)
	if err != nil {
		return nil, err
	}
	present := map[string]bool{}
	for _, name := range listing {
		if rel, err := untar.EntryPath(name, d.base); err == nil {
			present[rel] = true
		}
	}
	if err := d.ex.Prune(func(rel string) bool { return present[rel] }); err != nil {
		return nil, err
	}
	return d.missing(listing), nil
}

func describe(names []string) string {
	if names == nil {
		return "the whole tree"
	}
	return fmt.Sprintf("%d missing entries", len(names))
}

// attempt streams names (nil: the whole tree) and checks the result.
func (d *downloader) attempt(ctx context.Context, names []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sums := make(chan manifestResult, 1)
	if d.dig != nil {
		waiting := d.firstSums
		d.firstSums = nil
		go func() { sums <- d.manifest(ctx, waiting) }()
	}
	if err := d.stream(ctx, names); err != nil {
		return err
	}
	if d.dig == nil {
		return nil
	}
	r := <-sums
	if r.err != nil {
		return r.err
	}
	differ := compare(d.ex.Files(), r.m)
	if len(differ) == 0 {
		return nil
	}
	for _, rel := range differ {
		d.ex.Invalidate(rel)
	}
	return fmt.Errorf("%d files %w (first: %q)", len(differ), errMismatch, path.Join(d.base, differ[0]))
}

func (d *downloader) stream(ctx context.Context, names []string) error {
	sess, nonce, err := d.startStream(ctx, names)
	if err != nil {
		return err
	}
	tail := untar.NewHoldback(sess.out, len(streamEnd)+len(nonce))
	err = d.extract(tail)
	if err == nil {
		// Read to the end: the marker comes after what the extractor needs.
		if _, cerr := io.Copy(io.Discard, tail); cerr != nil {
			err = &streamError{cerr}
		}
	}
	sess.stdout.CloseWithError(errors.New("download stopped")) // unblocks the exec if extraction ended first
	eerr := <-sess.done
	var broken *streamError
	if err != nil && !errors.As(err, &broken) {
		return err // a local failure (no space here) broke the stream: it is the cause
	}
	var se *podexec.ScriptError
	if errors.As(eerr, &se) && se.Exited() && sourceChanged(se.Stderr) {
		return fmt.Errorf("receive: %w: %w", errSourceChanged, eerr)
	}
	// The archive may look whole, but the stream stopped before the
	// container's last word; the exec may even have said success.
	// A dropped connection (the exit status lost, which the extractor may
	// have read as the stream's end) is a cut when the marker is missing.
	lost := errors.Is(eerr, podexec.ErrExitLost)
	if lost && errors.Is(err, podexec.ErrExitLost) {
		err = nil // the extractor read the dropped connection as the stream's end: the marker tells
	}
	cut := err == nil && string(tail.Held()) != streamEnd+nonce
	if eerr != nil && !(lost && (cut || err != nil)) {
		return fmt.Errorf("receive: %w", eerr)
	}
	if cut {
		return &streamError{errors.New("the stream ended before the container's end marker: it was cut on the way")}
	}
	return err
}

// manifest lists the container's checksums of the tree: through the
// listing started with the probe when it still waits, else through an
// exec of its own.
func (d *downloader) manifest(ctx context.Context, waiting *awaited) manifestResult {
	where := path.Join(d.parent, d.base)
	if waiting != nil {
		m, err := awaitedManifest(ctx, waiting, d.version, where, d.base, d.dig)
		if !errors.Is(err, errAwaitedEnded) {
			return manifestResult{m, err}
		}
	}
	m, err := d.rem.manifest(ctx, d.parent, "./"+d.base, d.base, d.dig)
	return manifestResult{m, err}
}

// startStream starts the stream of names (nil: the whole tree): the
// first attempt's exec told to go on, or a streamScript of its own.
func (d *downloader) startStream(ctx context.Context, names []string) (*session, string, error) {
	if sess := d.first; sess != nil {
		d.first = nil
		version := d.version
		if version == "" {
			version = "-"
		}
		_, err := io.WriteString(sess.stdin, "stream "+d.codec+" "+version+"\n")
		sess.stdin.Close()
		if err != nil {
			sess.stop()
			return nil, "", &streamError{fmt.Errorf("start the stream: %w", err)}
		}
		return sess, d.firstNonce, nil
	}
	nonce, err := randomSuffix()
	if err != nil {
		return nil, "", err
	}
	args := []string{d.parent, "./" + d.base, d.codec, nonce}
	in := ""
	if names != nil {
		args[1] = "-"
		in = strings.Join(names, "\x00") + "\x00"
	}
	sess := d.rem.start(ctx, streamScript, args)
	go func() {
		_, _ = io.WriteString(sess.stdin, in)
		sess.stdin.Close()
	}()
	return sess, nonce, nil
}

// streamEnd starts the end marker streamScript prints after the archive.
const streamEnd = "kubectl-concourse-end "

// extract lands one stream, decompressing it first when it is. A stream
// that breaks on the way is a streamError, which a retry may fix.
func (d *downloader) extract(r io.Reader) error {
	switch d.codec {
	case compressGzip:
		zr, err := gzip.NewReader(r)
		if err != nil {
			return &streamError{fmt.Errorf("read gzip stream: %w", err)}
		}
		r = zr
	case compressLZOP:
		zr, err := lzo.NewReader(r)
		if err != nil {
			return &streamError{fmt.Errorf("read lzop stream: %w", err)}
		}
		r = zr
	}
	err := d.ex.Extract(r)
	var broken *untar.StreamError
	if errors.As(err, &broken) {
		return &streamError{err}
	}
	return err
}

// missing lists, from the container's listing, the fewest names that
// cover what is not yet complete here: a missing directory stands for its
// whole subtree, a present one is entered. Nothing already received intact
// is requested again, and nothing is ever skipped by byte offset.
func (d *downloader) missing(listing []string) []string {
	names := []string{}
	for _, name := range listing {
		rel, err := untar.EntryPath(name, d.base)
		if err != nil {
			continue // hostile listing: never request what could not be extracted
		}
		if d.ex.Complete(rel) {
			continue
		}
		if rel == "" || d.ex.IsDir(parentOf(rel)) {
			names = append(names, "./"+path.Join(d.base, rel))
		}
	}
	return names
}

// parentOf is the tree path of rel's directory ("" for the top).
func parentOf(rel string) string {
	if i := strings.LastIndexByte(rel, '/'); i >= 0 {
		return rel[:i]
	}
	return ""
}
