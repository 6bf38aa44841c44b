package transfer

import (
	"crypto/md5"
	"crypto/sha256"
	"hash"
)

// digest is the checksum both ends compute of every file to verify a
// transfer: the cheapest one the container has. The container's side is
// the cost that counts (a step's busybox hashes 256 MiB in 0.55 s with
// md5sum, 1.30 s with sha256sum; GNU coreutils in 0.50 s and 0.86 s), and
// the check is against accidents on the way (a cut, a lost or repeated
// piece of stream, a tar that writes something else than it read), not
// against an adversary: the container computes its own sums and could lie
// with any algorithm, and TLS already guards the bytes in transit. So md5,
// whose weakness is chosen collisions, is the right tool here, with
// sha256 when a container has no md5sum.
type digest struct {
	name    string // for messages: "md5", "sha256"
	tool    string // the container's program: md5sum, sha256sum
	hexLen  int    // characters of hex the tool prints
	newHash func() hash.Hash
}

var (
	digestMD5    = &digest{name: "md5", tool: "md5sum", hexLen: 32, newHash: md5.New}
	digestSHA256 = &digest{name: "sha256", tool: "sha256sum", hexLen: 64, newHash: sha256.New}
)

// chooseDigest picks the container's fastest checksum tool, nil when it
// has none (or no find to list the files).
func chooseDigest(c caps) *digest {
	switch {
	case !c.find:
		return nil
	case c.md5sum:
		return digestMD5
	case c.sha256sum:
		return digestSHA256
	}
	return nil
}

// sumOf returns h's sum in the fixed-size form the manifests keep (a short
// digest zero-padded; both sides of a comparison use the same digest).
func sumOf(h hash.Hash) [32]byte {
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}
