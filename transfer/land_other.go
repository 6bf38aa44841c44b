//go:build !linux

package transfer

func renameExchange(src, dest string) error { return errNoExchange }
