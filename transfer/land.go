package transfer

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// land puts the finished tree src in place of dest, which may or may not
// exist, so that dest is at every instant either the old or the new tree.
// src lies in a temporary directory beside dest (same filesystem); the old
// tree, if any, ends up in that directory and goes away with it.
func land(src, dest string) error {
	switch err := renameExchange(src, dest); {
	case err == nil:
		return nil
	case !errors.Is(err, errNoExchange):
		return fmt.Errorf("move %s into place: %w", dest, err)
	}
	// Without an atomic exchange: move the old tree aside, the new one in,
	// and the old one back if that fails.
	old := filepath.Join(filepath.Dir(src), "old")
	if err := os.Rename(dest, old); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("move %s aside: %w", dest, err)
	}
	if err := os.Rename(src, dest); err != nil {
		if rerr := os.Rename(old, dest); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
			return fmt.Errorf("move %s into place: %w (and the previous one is left at %s: %v)", dest, err, old, rerr)
		}
		return fmt.Errorf("move %s into place: %w", dest, err)
	}
	return nil
}

var errNoExchange = errors.New("atomic rename exchange not available")
