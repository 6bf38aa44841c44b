// Command pause is the entrypoint of the test cluster's distroless image: it
// does nothing until SIGTERM or SIGINT and then exits 0, like the pause
// container of a real cluster. Build it static (CGO_ENABLED=0) so that it runs
// in a root filesystem that holds nothing else.
//
// Given arguments, it is instead the one program a shell-less task can run,
// doing each step in turn: "echo TEXT" prints a line, "cp SRC DST" copies a
// file, "exit N" ends with status N.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"syscall"
)

func main() {
	if len(os.Args) == 1 {
		signals := make(chan os.Signal, 1)
		signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
		<-signals
		return
	}
	args := os.Args[1:]
	for len(args) > 0 {
		switch {
		case args[0] == "echo" && len(args) > 1:
			fmt.Println(args[1])
			args = args[2:]
		case args[0] == "cp" && len(args) > 2:
			data, err := os.ReadFile(args[1])
			if err == nil {
				err = os.WriteFile(args[2], data, 0o644)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
			args = args[3:]
		case args[0] == "exit" && len(args) > 1:
			code, _ := strconv.Atoi(args[1])
			os.Exit(code)
		default:
			fmt.Fprintf(os.Stderr, "pause: unknown step %q\n", args[0])
			os.Exit(2)
		}
	}
}
