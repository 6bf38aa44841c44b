// Command pause is the entrypoint of the test cluster's distroless image: it
// does nothing until SIGTERM or SIGINT and then exits 0, like the pause
// container of a real cluster. Build it static (CGO_ENABLED=0) so that it runs
// in a root filesystem that holds nothing else.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	<-signals
}
