package transfer

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/cli-runtime/pkg/printers"
)

// downloadTempPrefix names the directory a download arrives in, beside its
// destination.
const downloadTempPrefix = ".kubectl-concourse-download-"

// tempDirBeside makes the directory a download arrives in and holds its
// lock (lockDir), which tells a later download that its owner still runs.
// unlock releases it.
func tempDirBeside(localDir string) (dir string, unlock func(), err error) {
	dir, err = os.MkdirTemp(localDir, downloadTempPrefix)
	if err != nil {
		return "", nil, fmt.Errorf("create temporary directory beside the destination: %w", err)
	}
	unlock, err = lockDir(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return dir, unlock, nil
}

// removeStaleDownloads removes what killed downloads into localDir left:
// temporary directories whose owner no longer holds their lock.
func removeStaleDownloads(localDir string, warnf func(string, ...any)) {
	entries, err := os.ReadDir(localDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), downloadTempPrefix) {
			continue
		}
		dir := filepath.Join(localDir, e.Name())
		if !abandoned(dir) {
			continue
		}
		if err := os.RemoveAll(dir); err != nil {
			warnf("warning: could not remove %s, left by an interrupted download: %v\n", printers.EscapeTerminal(dir), err)
		}
	}
}
