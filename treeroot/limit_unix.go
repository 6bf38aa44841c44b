//go:build unix

package treeroot

import "syscall"

// maxOpen is a quarter of the soft limit on open files (Go raises it to
// the hard limit as a program starts), at most 4,096.
func maxOpen() int {
	var l syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l) != nil || l.Cur < 1024 {
		return 256
	}
	return int(min(l.Cur/4, 4096))
}
