package transfer

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/kubectl-concourse/kubectl-concourse/agent/client"
	"github.com/kubectl-concourse/kubectl-concourse/agent/protocol"
)

// What both directions share when the in-container agent carries them:
// the switch, the launch and its retries, the stream's codec.

// AgentUse says whether transfers go through the in-container agent; a
// command reads it once with AgentFromEnv, in its Complete.
type AgentUse int

const (
	agentAuto AgentUse = iota // the agent where it runs, else the scripts
	agentOff                  // the scripts only
	agentOnly                 // the agent, or fail: what a test of it wants
)

// Allowed says whether the agent may run: a warm cache needs it.
func (a AgentUse) Allowed() bool { return a != agentOff }

// agentEnv forces one way: "off" (the scripts) or "on" (the agent, or an
// error where it cannot run). The tests of each path set it.
const agentEnv = "KUBECTL_CONCOURSE_AGENT"

// AgentFromEnv reads agentEnv; an unknown value is the user's error.
func AgentFromEnv() (AgentUse, error) {
	switch v := os.Getenv(agentEnv); v {
	case "", "auto":
		return agentAuto, nil
	case "off":
		return agentOff, nil
	case "on":
		return agentOnly, nil
	default:
		return agentAuto, fmt.Errorf("%s=%q: want auto, on or off", agentEnv, v)
	}
}

// launchAgent starts the agent in rem's container, its binary written
// beside dir when that lets it run, again after a broken stream (as many
// times as s.retries). An error wrapping client.ErrUnavailable: it cannot run there.
func launchAgent(ctx context.Context, rem *remote, dir string, s settings) (*client.Session, error) {
	return launchAgentWith(ctx, rem, client.Options{Dir: dir}, s)
}

// launchAgentKept is launchAgent into a warm cache's claim (cacheDir),
// which keeps a copy of the agent for the next run.
func launchAgentKept(ctx context.Context, rem *remote, cacheDir string, s settings) (*client.Session, error) {
	return launchAgentWith(ctx, rem, client.Options{Dir: cacheDir, Keep: cacheDir}, s)
}

func launchAgentWith(ctx context.Context, rem *remote, o client.Options, s settings) (*client.Session, error) {
	for attempt := 0; ; attempt++ {
		sess, err := client.Launch(ctx, rem.exec, rem.container, o)
		if err == nil || errors.Is(err, client.ErrUnavailable) || ctx.Err() != nil || s.retries >= 0 && attempt >= s.retries {
			return sess, err
		}
		s.warnf("warning: starting the agent: %v; again (retry %d)\n", err, attempt+1)
	}
}

// Measured over loopback here (a 1 MiB to 256 MiB file, Go module trees of
// 20 to 3,587 files): the agent's start (its 3.6 MB binary crossing, then
// its hello) costs about 75 ms more than the scripts' one exec (110 ms
// while the binary was gunzipped on the way out), and it then gains about
// 1.4 ms a MiB (Go's hashing and writes against busybox's md5sum and tar)
// and 71 µs an entry: a real tree of 1,053 files (9.4 MB) came down in
// about the same time both ways. It pays from about 55 MiB, or 1,060
// entries, or a mix. The per-MiB gain is the trees':
// a single file of 10 to 256 MiB came down no faster through the agent
// than through the scripts (docs/benchmarks.md), a rule left as it is
// until a slow link, where the agent's zstd may win, is measured.
const (
	agentStartMicros     = 75_000
	agentGainPerMiB      = 1_400
	agentGainPerEntry    = 71
	agentPaysFromEntries = agentStartMicros/agentGainPerEntry + 1
)

// agentPays says whether the agent should carry a download the probe
// found so: a tree large enough for its start to pay, or one the scripts
// could not verify (no checksum tool; without tar they end at the probe,
// ErrNoTar). A path that is missing, odd or a landed upload's link stays
// with the scripts, which say what is wrong or follow it.
func agentPays(c caps, verify bool) bool {
	switch {
	case c.kind != "dir" && c.kind != "file" || c.link:
		return false
	case verify && chooseDigest(c) == nil:
		return true
	}
	return c.size>>20*agentGainPerMiB+int64(c.count)*agentGainPerEntry > agentStartMicros
}

// agentCodec chooses how an upload's stream to the agent is compressed: as
// --compress says, and for auto when the tree compresses and is large
// enough for it to matter: with S2 where the agent's binary crossed the
// link fast (binaryRate, bytes a second; 0 unknown), else with zstd.
//
// Both cost little CPU, but on the benchmark machine's 2 cores the CPU is
// what a transfer waits for, even through the 25 MB/s link. 2,000 real Go
// files (29 MB): zstd (fastest) makes 13.8% of them in 157 ms and reads
// them back in 35; S2 makes 19.0% in 49 ms and reads them back in 21. An
// upload of them took 597 ms with zstd and 504 with S2 over loopback, 719
// and 670 through the 25 MB/s link (medians of 7, interleaved). zstd's
// fewer bytes win only on a slower link: from what the CPU saves
// (about 4 ms a MB) against the 5% more bytes, below about 18 MB/s.
func agentCodec(compress string, total int64, ratio, binaryRate float64) string {
	switch compress {
	case compressNone:
		return protocol.CodecNone
	case compressGzip:
		return protocol.CodecGzip
	}
	if total < smallTransfer || ratio <= 0 || ratio > maxRatio {
		return protocol.CodecNone
	}
	return linkCodec(binaryRate)
}

// linkCodec is the codec for a stream that compresses, by how fast the
// agent's binary crossed the link: S2 from s2FromBinaryRate, zstd below
// it or when nothing crossed.
func linkCodec(binaryRate float64) string {
	if binaryRate >= s2FromBinaryRate {
		return protocol.CodecS2
	}
	return protocol.CodecZstd
}

// s2FromBinaryRate is the binary's crossing rate from which transfers are
// compressed with S2: the break-even above, less a margin. The crossing
// measures the link well where it is slow (22–25 MB/s through the test
// cluster's 25 MB/s link) and the agent's start where it is fast (54–93
// MB/s over loopback). A kept agent (a warm cache's) crosses nothing: its
// uploads stay with zstd, right on any link.
const s2FromBinaryRate = 15e6

// crossedAt says, for -v, how fast the agent's binary crossed the link.
func crossedAt(sess *client.Session) string {
	if sess.BinaryRate == 0 {
		return ""
	}
	return fmt.Sprintf(" (its binary crossed at %.0f MB/s)", sess.BinaryRate/1e6)
}

func codecName(c string) string {
	if c == protocol.CodecNone {
		return "uncompressed"
	}
	return c + "-compressed"
}
