package artifacts

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// Remote scripts. Paths travel as positional parameters ("$1"), never
// inside the script text, so no name can inject shell. Every path the
// scripts receive is absolute or starts with "./", so none reads as an
// option. They run in POSIX sh (busybox ash, dash, bash) with busybox or
// GNU tools.
const (
	// probeScript: $1 path, $2 "size" to measure it, $3 "ratio" to
	// estimate how well it gzips, $4 bytes of link sample (0: none) sent
	// only when the path holds at least $5 KiB. The ratio and the sample
	// are skipped when there is no gzip to use.
	probeScript = `p=$1
for c in tar gzip sha256sum find xargs; do command -v "$c" >/dev/null 2>&1 && echo "has $c"; done
tar --version 2>/dev/null | grep -q 'GNU tar' && echo "has gnutar"
if [ -L "$p" ]; then echo "type link"; elif [ -d "$p" ]; then echo "type dir"; elif [ -f "$p" ]; then echo "type file"; elif [ -e "$p" ]; then echo "type other"; else echo "type none"; fi
sz=0
if [ "$2" = size ] && [ -e "$p" ]; then sz=$(du -sk "$p" 2>/dev/null | cut -f1); echo "size $sz"; fi
command -v gzip >/dev/null 2>&1 || exit 0
if [ "$3" = ratio ] && [ -e "$p" ]; then
  s() { find "$p" -type f 2>/dev/null | head -n 64 | while IFS= read -r f; do head -c 32768 "$f"; done | head -c 1048576; }
  echo "ratio $(s | wc -c) $(s | gzip -1 | wc -c)"
fi
if [ "$4" -gt 0 ] && [ "${sz:-0}" -ge "$5" ]; then
  echo sample
  yes 0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ | head -c "$4"
fi`

	// streamScript sends $2 (or the NUL-separated names on stdin when $2
	// is "-") from directory $1 as tar, gzipped when $3 is "gzip". The fd
	// juggling returns tar's status through the pipe without pipefail,
	// which dash lacks.
	streamScript = `cd -- "$1" || exit
pack() { if [ "$2" = - ]; then xargs -0 -r tar cf -; else tar cf - "$2"; fi; }
if [ "$3" = gzip ]; then
  { s=$( { { pack "$@" 3>&-; echo $? >&3; } | gzip -1 >&4 3>&-; } 3>&1 ); } 4>&1
  exit "$s"
fi
pack "$@"`

	// manifestScript prints the sha256 of every regular file under $2.
	manifestScript = `cd -- "$1" || exit
find "$2" -type f -exec sha256sum {} +`

	// listScript prints every name under $2, NUL terminated.
	listScript = `cd -- "$1" || exit
find "$2" -print0`

	// receiveScript unpacks stdin into staging directory $1; $2 is "gzip"
	// or "none"; unless $3 is "-", it then prints the sha256 of every file
	// under $3 (saving an exec); the rest are tar options.
	receiveScript = `mkdir -p -- "$1" && cd -- "$1" || exit
z=$2 v=$3; shift 3
if [ "$z" = gzip ]; then gzip -dc | tar xf - "$@"; else tar xf - "$@"; fi || exit
[ "$v" = - ] || find "$v" -type f -exec sha256sum {} +`

	// commitScript moves staged $1/$3 to $2/$3, keeping the previous one
	// at $4 until the new one is in place, then removes staging.
	commitScript = `s=$1 d=$2 n=$3 old=$4
if [ -e "$d/$n" ] || [ -L "$d/$n" ]; then mv -f -- "$d/$n" "$old" || exit; fi
if mv -- "$s/$n" "$d/$n"; then rm -rf -- "$s" "$old"; exit 0; fi
st=$?
if [ -e "$old" ] || [ -L "$old" ]; then mv -- "$old" "$d/$n"; fi
exit $st`

	removeScript = `rm -rf -- "$@"`
)

// remote runs the scripts above in one container.
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
	return podexec.RunScript(ctx, r.exec, r.container, script, args, in, out)
}

// caps is what the probe found.
type caps struct {
	tar, gzip, sha256sum, find, xargs, gnuTar bool
	kind                                      string // dir, file, link, other, none
	size                                      int64  // bytes, from du; 0 if unknown
	ratio                                     float64
	linkBytesPerSec                           float64 // 0 when not sampled
}

// probe asks the container, in one exec, what tools it has, what path is,
// and optionally how big it is, how well it compresses and how fast the
// exec channel is (sample bytes timed from first to last).
func (r *remote) probe(ctx context.Context, p string, size, ratio bool, sample int, sampleMin int64) (caps, error) {
	pr, pw := io.Pipe()
	var c caps
	done := make(chan error, 1)
	go func() {
		done <- parseProbe(pr, &c)
		pr.Close()
	}()
	args := []string{p, "nosize", "noratio", strconv.Itoa(sample), strconv.FormatInt(sampleMin>>10, 10)}
	if size {
		args[1] = "size"
	}
	if ratio {
		args[2] = "ratio"
	}
	err := r.run(ctx, probeScript, args, nil, pw)
	pw.CloseWithError(err)
	if perr := <-done; err == nil {
		err = perr
	}
	if err != nil && podexec.ExecutableMissing(err) {
		return c, fmt.Errorf("%w (%v)", errNoTar, err)
	}
	if err != nil {
		return c, fmt.Errorf("probe %s: %w", p, err)
	}
	if !c.tar {
		return c, errNoTar
	}
	return c, nil
}

func parseProbe(r io.Reader, c *caps) error {
	br := bufio.NewReader(r)
	for {
		line, err := br.ReadString('\n')
		if err == io.EOF && line == "" {
			return nil
		}
		if err != nil && err != io.EOF {
			return err
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
				case "sha256sum":
					c.sha256sum = true
				case "find":
					c.find = true
				case "xargs":
					c.xargs = true
				case "gnutar":
					c.gnuTar = true
				}
			}
		case "type":
			if len(f) == 2 {
				c.kind = f[1]
			}
		case "size":
			if len(f) == 2 {
				kb, _ := strconv.ParseInt(f[1], 10, 64)
				c.size = kb * 1024
			}
		case "ratio":
			if len(f) == 3 {
				raw, _ := strconv.ParseFloat(f[1], 64)
				gz, _ := strconv.ParseFloat(f[2], 64)
				if raw > 0 {
					c.ratio = gz / raw
				}
			}
		case "sample":
			c.linkBytesPerSec = timeSample(br)
			return nil
		}
	}
}

// timeSample measures from the first byte to the end, so the exec's
// start-up latency does not count.
func timeSample(r io.Reader) float64 {
	var first [1]byte
	if _, err := io.ReadFull(r, first[:]); err != nil {
		return 0
	}
	start := time.Now()
	n, _ := io.Copy(io.Discard, r)
	d := time.Since(start)
	if d <= 0 || n < 64<<10 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// manifest maps tree paths (relative to the top entry named prefix) to the
// sha256 the container computed. Unparseable lines are counted, never
// guessed at.
type manifest struct {
	sums map[string][32]byte
	bad  int
}

func (r *remote) manifest(ctx context.Context, dir, name, prefix string) (manifest, error) {
	var out bytes.Buffer
	if err := r.run(ctx, manifestScript, []string{dir, name}, nil, &out); err != nil {
		return manifest{}, fmt.Errorf("sha256 of %s: %w", path.Join(dir, name), err)
	}
	return parseManifest(out.String(), prefix), nil
}

func parseManifest(s, prefix string) manifest {
	m := manifest{sums: map[string][32]byte{}}
	for _, line := range strings.Split(s, "\n") {
		if line == "" {
			continue
		}
		escaped := strings.HasPrefix(line, `\`) // GNU sha256sum escapes names holding \ or newline
		if escaped {
			line = line[1:]
		}
		if len(line) < 66 || line[64] != ' ' || (line[65] != ' ' && line[65] != '*') {
			m.bad++
			continue
		}
		var sum [32]byte
		if _, err := hex.Decode(sum[:], []byte(line[:64])); err != nil {
			m.bad++
			continue
		}
		name := line[66:]
		if escaped {
			name = strings.NewReplacer(`\\`, `\`, `\n`, "\n").Replace(name)
		}
		rel, err := entryPath(name, prefix)
		if err != nil {
			m.bad++
			continue
		}
		m.sums[rel] = sum
	}
	return m
}

// compare lists the files whose bytes on the two sides differ or exist on
// one side only.
func compare(local map[string][32]byte, m manifest) (differ []string, err error) {
	for rel, sum := range m.sums {
		if got, ok := local[rel]; !ok || got != sum {
			differ = append(differ, rel)
		}
	}
	for rel := range local {
		if _, ok := m.sums[rel]; !ok {
			differ = append(differ, rel)
		}
	}
	if m.bad > 0 {
		return differ, fmt.Errorf("sha256 manifest from the container has %d unreadable lines", m.bad)
	}
	return differ, nil
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

// remove deletes staging paths even when ctx is already cancelled: an
// interrupted transfer must not leave them behind.
func (r *remote) remove(ctx context.Context, paths ...string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	return r.run(ctx, removeScript, paths, nil, nil)
}

// errNoTar says the container cannot run the transfer itself.
var errNoTar = errors.New("the container has no sh or tar")
