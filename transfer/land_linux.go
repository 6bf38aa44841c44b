package transfer

import (
	"errors"

	"golang.org/x/sys/unix"
)

// renameExchange renames src to dest when dest does not exist, and swaps
// them atomically (renameat2 RENAME_EXCHANGE) when it does.
func renameExchange(src, dest string) error {
	err := unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dest, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EEXIST) {
		err = unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dest, unix.RENAME_EXCHANGE)
	}
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) {
		return errNoExchange
	}
	return err
}
