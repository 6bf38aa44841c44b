// Command agentpack compresses the agent's binaries for agent/embedded, the
// same bytes from the same input every time (gzip with no name and no time
// in its header), so that `make agent-check` can compare them with the
// committed ones: agentpack -o OUT.gz IN.
package main

import (
	"compress/gzip"
	"flag"
	"fmt"
	"os"
)

func main() {
	out := flag.String("o", "", "the .gz file to write")
	flag.Parse()
	if *out == "" || flag.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: agentpack -o OUT.gz IN")
		os.Exit(2)
	}
	if err := pack(*out, flag.Arg(0)); err != nil {
		fmt.Fprintf(os.Stderr, "agentpack: %v\n", err)
		os.Exit(1)
	}
}

func pack(out, in string) error {
	b, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	zw, err := gzip.NewWriterLevel(f, gzip.BestCompression) // the header's Name and ModTime stay empty
	if err != nil {
		return err
	}
	if _, err := zw.Write(b); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return f.Close()
}
