//go:build !unix

package treeroot

// maxOpen is 1,024 where no limit on open files is there to read.
func maxOpen() int { return 1024 }
