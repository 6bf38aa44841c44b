//go:build !linux

package artifacts

func renameExchange(src, dest string) error { return errNoExchange }
