package transfer

import (
	"errors"
	"fmt"
	"strings"

	"github.com/kubectl-concourse/kubectl-concourse/podexec"
)

// errMismatch: what arrived differs from what was sent, by checksum.
var errMismatch = errors.New("files differ from the source by checksum")

// errSourceChanged: the container's tar saw a file go or change while it
// read it.
var errSourceChanged = errors.New("the source changed while it was read")

// sourceChanged says whether the stderr of the container's tar says that
// what it packed changed under it.
func sourceChanged(stderr string) bool {
	for _, w := range []string{"No such file or directory", "file changed as we read it", "File removed before we read it", "short read", "file shrank"} {
		if strings.Contains(stderr, w) {
			return true
		}
	}
	return false
}

// streamError: the stream broke while it was read (a cut: the archive
// ends early), as opposed to a local failure to write what it carried.
type streamError struct{ err error }

func (e *streamError) Error() string { return e.err.Error() }
func (e *streamError) Unwrap() error { return e.err }

// transient says whether a retry can fix err: a stream that broke (the
// exec did not get to exit, or tar says its input ended early) or a
// verification that failed. An answer the container gave (a script that
// exited: no space, permission denied, read-only), a local failure (no
// space here) or a hostile archive would only come again, three times in
// full, and is reported at once instead.
func transient(err error) bool {
	var se *podexec.ScriptError
	var st *streamError
	switch {
	case errors.Is(err, errMismatch), errors.Is(err, errSourceChanged), errors.As(err, &st):
		return true
	case errors.As(err, &se):
		return !se.Exited() || inputEndedEarly(se.Stderr)
	}
	return false
}

// inputEndedEarly: tar or gzip in the container saw its input stop in the
// middle, or the archive lacked its end entry, which a stream cut on the
// way in does.
func inputEndedEarly(stderr string) bool {
	if strings.Contains(stderr, cutMessage) {
		return true
	}
	s := strings.ToLower(stderr)
	for _, w := range []string{"short read", "unexpected eof", "unexpected end of file", "unexpected end of input"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// remedies: what to do about the container's most common refusals, by the
// words its tools use (busybox, GNU, musl and glibc agree on strerror).
var remedies = []struct{ words, remedy string }{
	{"No space left on device", "free space in the container, or choose a destination on another volume"},
	{"Read-only file system", "the destination is read-only: choose a directory on a writable volume"},
	{"Permission denied", "the step's user cannot write or read there: choose a directory it owns (or --container a container whose user can)"},
	{"Device or resource busy", "it is a mount point (a volume) and cannot be replaced: give a directory below it"},
	{"Disk quota exceeded", "the step's quota is full: free space, or choose another volume"},
}

// withRemedy appends the way out to a failure the container reported.
func withRemedy(err error) error {
	var se *podexec.ScriptError
	if !errors.As(err, &se) || !se.Exited() {
		return err
	}
	for _, r := range remedies {
		if strings.Contains(se.Stderr, r.words) {
			return fmt.Errorf("%w; %s", err, r.remedy)
		}
	}
	return err
}
