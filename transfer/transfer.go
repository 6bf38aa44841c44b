package transfer

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"path"
)

// What both directions share: their settings, the naming of remote paths
// and the random names of attempts.

// settings are the flags both directions share.
type settings struct {
	compress      string
	verify        bool
	retries       int // negative: no limit
	preserveOwner bool
	warnf         func(format string, a ...any)
	progress      *Progress
	// rootByUmask: a downloaded directory's own mode is the one a local
	// mkdir gives (0777 less the umask), not the container's (an emptyDir
	// is 0777): execute's outputs, which fly creates locally.
	rootByUmask bool
	agent       AgentUse
	// verbosef says what the user asked to hear with -v: which way a
	// transfer went. nil: nothing.
	verbose func(format string, a ...any)
}

func (s settings) verbosef(format string, a ...any) {
	if s.verbose != nil {
		s.verbose(format, a...)
	}
}

// RemoteAbs anchors a relative remote path at the working directory, as a
// transfer does, and makes sure no path handed to a remote script reads as
// an option: a caller that checks the path before the transfer (that a
// helper container sees it) checks the one the transfer will use.
func RemoteAbs(workingDir, p string) string {
	if !path.IsAbs(p) && workingDir != "" {
		p = path.Join(workingDir, p)
	}
	p = path.Clean(p)
	if !path.IsAbs(p) {
		p = "./" + p
	}
	return p
}

// SplitRemote returns the directory and base name of a cleaned remote path,
// the base name being the name of the landed copy; an error says the path
// names no file or directory, before anything is started for it.
func SplitRemote(p string) (dir, base string, err error) {
	dir, base = path.Split(p)
	if base == "" || base == "." || base == ".." || base == "/" {
		return "", "", fmt.Errorf("remote path %q does not name a file or directory", p)
	}
	if dir == "" {
		dir = "."
	}
	return path.Clean(dir), base, nil
}

// randomSuffix is a fresh name part: an upload's ID (its staging and
// version directories), a stream's end marker nonce.
func randomSuffix() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}
