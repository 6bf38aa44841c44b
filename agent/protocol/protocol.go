// Package protocol is what the plugin and its in-container agent say to
// each other in control frames (package frame): one Request, one Reply,
// and the manifest of a tree. It imports the standard library only.
package protocol

import (
	"bufio"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Operations.
const (
	// OpReceive: the plugin sends a (compressed) tar as a data stream;
	// the agent extracts it into a staging directory beside Dest and
	// replies with the staging's name, its counts and manifest digest.
	OpReceive = "receive"
	// OpManifest: the agent replies with the manifest of Staging as a
	// data stream of JSON lines (Entry), then a Reply.
	OpManifest = "manifest"
	// OpCommit: the agent lands Staging at Dest and replies Landed, then
	// removes what it replaced.
	OpCommit = "commit"
	// OpSend: the agent sends Path as a (compressed) tar data stream,
	// then its manifest as a data stream, then a Reply.
	OpSend = "send"
	// OpAbort: the agent removes its staging and exits.
	OpAbort = "abort"
	// OpCacheManifest: the agent replies with the entries of the warm
	// cache at Path it still trusts (CacheEntry, a data stream of
	// WriteCacheManifest's lines, CacheListCodec), then a Reply: an entry whose file was
	// changed behind the agent's back (its inode, ctime or size differ
	// from what the agent wrote) is left out, so that the plugin sends it
	// again.
	OpCacheManifest = "cache-manifest"
	// OpCacheApply: the plugin sends a tar of what changed (every
	// directory and symlink, the regular files the cache lacks), then the
	// whole tree's entries (CacheEntry, as cache-manifest's); the agent brings the cache at
	// Path to exactly that tree, removing what it does not list and giving
	// directories their listed modes and times back, records its manifest
	// and replies with the digest of the tree it holds. The task then uses
	// the tree in place (a previous task's changes are what this repairs).
	OpCacheApply = "cache-apply"
)

// Codecs a byte stream may be compressed with.
const (
	CodecNone = ""
	CodecGzip = "gzip"
	CodecZstd = "zstd"
	CodecS2   = "s2"
)

// CacheListCodec compresses the entry lists of cache-manifest and
// cache-apply: about 200 bytes a file (9,455 files: 2 MB), a third of that
// compressed, and each crosses the link on every warm run.
const CacheListCodec = CodecZstd

// StagingPrefix begins the name of everything the agent makes beside a
// destination.
const StagingPrefix = ".kubectl-concourse-"

// NewStagingName is a fresh staging name.
func NewStagingName() Name {
	var id [8]byte
	rand.Read(id[:])
	return Name(StagingPrefix + hex.EncodeToString(id[:]))
}

// Hello is the agent's first control frame, right after the handshake.
type Hello struct {
	Arch string `json:"arch"` // GOARCH of the agent
	UID  int    `json:"uid"`
	GID  int    `json:"gid"`
	PID  int    `json:"pid"`
	// Self is the SHA-256 (hex) of the agent's own executable as it
	// runs: the plugin checks that the binary it sent arrived intact (the
	// launcher checks only its size, as a checksum tool costs the
	// container more than the agent's own hash).
	Self string `json:"self"`
}

// Request is the plugin's control frame: Op and the fields it uses.
type Request struct {
	Op string `json:"op"`
	// Dest is the absolute path an upload lands at (receive, commit).
	Dest Name `json:"dest,omitempty"`
	// Staging names a staging directory (its base name beside Dest,
	// StagingPrefix and hex digits). For receive, the plugin may choose it
	// (NewStagingName), so that a retry of an interrupted receive names it
	// again and the agent reuses what the first attempt wrote (with
	// KeepOnEOF); empty, the agent picks one. For manifest and commit, the
	// one receive answered.
	Staging Name `json:"staging,omitempty"`
	// Path is the absolute path send tars.
	Path  Name   `json:"path,omitempty"`
	Codec string `json:"codec,omitempty"`
	// PreserveOwner: receive sets owners from the tar (as root).
	PreserveOwner bool `json:"preserveOwner,omitempty"`
	// KeepOnEOF: a receive cut by the end of stdin leaves its staging for
	// a retry to reuse for a few seconds, then removes it.
	KeepOnEOF bool `json:"keepOnEOF,omitempty"`
	// InPlace: receive extracts straight into Dest, a directory nothing
	// uses yet (an input of a task that has not started): no staging and
	// nothing to commit. A retry extracts into it again, over what an
	// earlier attempt left, once that attempt's agent has let it go.
	InPlace bool `json:"inPlace,omitempty"`
	// NoFileSums (send): the manifest's files carry no SHA-256. The
	// plugin asks for it when zstd's content checksum (XXH64 of every
	// byte of the stream, checked by the decoder at the frame's end)
	// already verifies what arrives, or when it verifies nothing
	// (--verify=false): hashing every file on both ends again cost a
	// 256 MiB download a quarter of its time on two cores.
	NoFileSums bool `json:"noFileSums,omitempty"`
}

// Reply answers a Request. A non-empty Error is the operation's failure.
type Reply struct {
	Error   string `json:"error,omitempty"`
	Staging Name   `json:"staging,omitempty"`
	Reused  bool   `json:"reused,omitempty"` // receive took over an earlier staging
	Files   int64  `json:"files,omitempty"`  // regular files
	Bytes   int64  `json:"bytes,omitempty"`  // their bytes
	Digest  string `json:"digest,omitempty"` // ManifestDigest of the tree
	// Landed (commit): the tree is at Dest. How says by what means:
	// "exchange", "noreplace" or "renames" (the destination was absent
	// for the time between two renames).
	Landed bool   `json:"landed,omitempty"`
	How    string `json:"how,omitempty"`
}

// Err is the reply's error, or nil.
func (r Reply) Err() error {
	if r.Error == "" {
		return nil
	}
	return errors.New(r.Error)
}

// Kinds of manifest entries.
const (
	KindFile    = "f"
	KindDir     = "d"
	KindSymlink = "l"
)

// Entry is one entry of a tree: Path is "." for the top, else slash
// separated below it.
type Entry struct {
	Path   Name   `json:"p"`
	Kind   string `json:"k"`
	Mode   uint32 `json:"m"` // permission bits (07777)
	Size   int64  `json:"s,omitempty"`
	SHA256 string `json:"h,omitempty"` // hex, regular files
	Link   Name   `json:"l,omitempty"` // symlink target
}

// CacheEntry is an entry of a warm cache's manifest: the entry, the
// plugin's quick check (the local file's modification time, with the size)
// and the file as the agent wrote it into the cache, which a cheap lstat
// compares to tell a write behind its back.
type CacheEntry struct {
	Entry
	MTime int64 // the local file's, in nanoseconds
	Ino   uint64
	CTime int64 // the cached file's status change, in nanoseconds
}

// CacheTree and CacheManifest are the names, in a cache's directory, of
// the cached tree and of its manifest (CacheEntry lines,
// WriteCacheManifest).
const (
	CacheTree     = "tree"
	CacheManifest = "manifest"
)

// WriteCacheManifest writes entries one a line: kind, mode (octal), size,
// local mtime, inode, ctime, SHA-256 (or -), then the path and the link
// target, quoted. A cache's entries (one per file of a source tree) are
// read and written several times a run: this costs a tenth of JSON's
// time.
func WriteCacheManifest(w io.Writer, entries []CacheEntry) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	var line []byte
	for _, e := range entries {
		sha := e.SHA256
		if sha == "" {
			sha = "-"
		}
		line = append(line[:0], e.Kind...)
		line = append(line, ' ')
		line = strconv.AppendUint(line, uint64(e.Mode), 8)
		for _, n := range []int64{e.Size, e.MTime, int64(e.Ino), e.CTime} {
			line = append(line, ' ')
			line = strconv.AppendInt(line, n, 10)
		}
		line = append(line, ' ')
		line = append(line, sha...)
		line = append(line, ' ')
		line = strconv.AppendQuote(line, string(e.Path))
		line = append(line, ' ')
		line = strconv.AppendQuote(line, string(e.Link))
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return err
		}
	}
	return bw.Flush()
}

// ReadCacheManifest reads what WriteCacheManifest wrote.
func ReadCacheManifest(r io.Reader) ([]CacheEntry, error) {
	var entries []CacheEntry
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		e, err := parseCacheEntry(sc.Text())
		if err != nil {
			return nil, fmt.Errorf("cache manifest: line %d: %w", n, err)
		}
		entries = append(entries, e)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("cache manifest: %w", err)
	}
	return entries, nil
}

var errCacheLine = errors.New("malformed entry")

func parseCacheEntry(line string) (CacheEntry, error) {
	var e CacheEntry
	var f [7]string
	for i := range f {
		var ok bool
		if f[i], line, ok = strings.Cut(line, " "); !ok {
			return e, errCacheLine
		}
	}
	mode, err := strconv.ParseUint(f[1], 8, 32)
	if err != nil {
		return e, errCacheLine
	}
	var n [4]int64
	for i := range n {
		if n[i], err = strconv.ParseInt(f[2+i], 10, 64); err != nil {
			return e, errCacheLine
		}
	}
	p, err := strconv.QuotedPrefix(line)
	if err != nil || len(line) < len(p)+1 || line[len(p)] != ' ' {
		return e, errCacheLine
	}
	path, _ := strconv.Unquote(p)
	link, err := strconv.Unquote(line[len(p)+1:])
	if err != nil {
		return e, errCacheLine
	}
	e.Kind, e.Mode, e.Size, e.MTime, e.Ino, e.CTime = f[0], uint32(mode), n[0], n[1], uint64(n[2]), n[3]
	if f[6] != "-" {
		e.SHA256 = f[6]
	}
	e.Path, e.Link = Name(path), Name(link)
	return e, nil
}

// ContentSHA256 is the SHA-256 (hex) of what r holds: a file's in an
// Entry, and the agent's binary's.
func ContentSHA256(r io.Reader) (string, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// ManifestDigest is the SHA-256 of the entries in path order, each as one
// line whose fields are quoted where they may hold anything: both ends
// compute it over the tree they hold.
func ManifestDigest(entries []Entry) string {
	sorted := append([]Entry(nil), entries...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Path < sorted[j].Path })
	h := sha256.New()
	for _, e := range sorted {
		fmt.Fprintf(h, "%s %s %o %d %s %s\n", strconv.Quote(string(e.Path)), e.Kind, e.Mode, e.Size, e.SHA256, strconv.Quote(string(e.Link)))
	}
	return hex.EncodeToString(h.Sum(nil))
}

// WriteManifest writes entries as JSON lines.
func WriteManifest(w io.Writer, entries []Entry) error {
	enc := json.NewEncoder(w)
	for _, e := range entries {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	return nil
}

// ReadManifest reads what WriteManifest wrote.
func ReadManifest(r io.Reader) ([]Entry, error) {
	var entries []Entry
	dec := json.NewDecoder(r)
	for {
		var e Entry
		err := dec.Decode(&e)
		if err == io.EOF {
			return entries, nil
		}
		if err != nil {
			return nil, fmt.Errorf("manifest: %w", err)
		}
		entries = append(entries, e)
	}
}

// Name is a file name or path as the file system has it: any bytes. JSON
// strings would turn bytes that are not UTF-8 into U+FFFD, so such a name
// travels as {"b64": "..."}.
type Name string

func (n Name) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(n)) {
		return json.Marshal(string(n))
	}
	return json.Marshal(struct {
		B64 string `json:"b64"`
	}{base64.StdEncoding.EncodeToString([]byte(n))})
}

func (n *Name) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = Name(s)
		return nil
	}
	var o struct {
		B64 string `json:"b64"`
	}
	if err := json.Unmarshal(b, &o); err != nil {
		return err
	}
	raw, err := base64.StdEncoding.DecodeString(o.B64)
	*n = Name(raw)
	return err
}
