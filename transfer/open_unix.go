//go:build unix

package transfer

import "syscall"

// readOnly are the flags a local file to send is opened with. O_NONBLOCK:
// a file swapped for a fifo since the walk reads as empty (and then as
// shrunk) instead of waiting for a writer; and an os.File opened so skips
// the fcntl calls that put a blocking descriptor in and out of
// non-blocking mode for the poller (four per file).
const readOnly = syscall.O_RDONLY | syscall.O_NONBLOCK
