package transfer

// Remote scripts. Paths travel as positional parameters ("$1"), never
// inside the script text, so no name can inject shell. Every path the
// scripts receive is absolute or starts with "./", so none reads as an
// option. They run in POSIX sh (busybox ash, dash, bash) with busybox or
// GNU tools.
//
// An upload to DIR/NAME keeps its state in DIR/.kubectl-concourse/NAME
// (stateDir): staging.ID/NAME while it arrives (staging.ID.pids names its
// receiving processes), v.ID/NAME once committed, and lock while a commit
// runs. A directory lands as the symlink DIR/NAME ->
// .kubectl-concourse/NAME/v.ID/NAME, so that the next upload replaces it
// with one rename(2) of a symlink: DIR/NAME is at every instant the old
// tree or the new one, never missing and never nested, whatever runs
// concurrently. A file lands by one rename over the old file.
const (
	// probeFunc defines probe, which the transfer scripts run first (an exec
	// fewer than a probe of its own: three round trips to a remote
	// cluster). probe: $1 path, $2 "size" to measure it, $3 "ratio" to
	// offer a measure of how well it compresses (with lzop when there is
	// one, else gzip -1), $4 bytes of link sample (0: none) sent only when
	// the path holds at least $5 KiB (else nothing is measured: a small
	// transfer is not compressed) and does not already look
	// incompressible: of a file, the first 64 KiB are tried first (when $3
	// is "ratio"), and data that compresses to more than $6 percent
	// (archives, images, random bytes) gets no sample, since the link's
	// speed then decides nothing. When it offers the ratio ("sample ask":
	// $3 is "ratio" and a compressor is there), after the sample it reads
	// one line from stdin: "ratio" (the plugin found the link slow enough
	// for compression to pay) has it read 1 MiB of the path twice, alone
	// and compressed, and print the ratio; anything else, or the end of
	// stdin (an interrupted plugin), skips that (28 ms of a loopback
	// download of a source tree on the benchmark machine). "type" follows
	// symlinks (a symlink to a directory is a directory to upload into);
	// "link" follows when the path itself is a symlink, with the version ID
	// when it is one of ours (an upload landed there), which a download
	// follows. "size" follows the path when it is a symlink, never the
	// symlinks in a tree ("$p/", not du -L: a link to / would have du walk
	// the container's whole filesystem). $7 above 0 has it count the
	// entries of a directory, up to $7 ("count N"); as many as that, unless
	// the path is a symlink (which stays with the scripts), leave the tree
	// to the agent, which needs neither the link sample nor the ratio, so
	// neither is taken (about 220 ms of a download of 2,000 Go files
	// through a 25 MB/s link). The plugin times "ratio-read" to "ratio-start" (reading the
	// sample) and "ratio-start" to "ratio" (reading and compressing it):
	// compressorRate. The link sample comes from /dev/zero in 64 KiB writes
	// (sampleBlock), so that the exec channel's speed is timed, not a
	// producer's small writes. It reads its stdin from fd 3: stdin itself
	// is /dev/null for the tools it runs, which must not eat the plugin's
	// lines (a stand-in tar may read it). The scripts print "decide" after
	// it and read the plugin's decision, one line, from stdin.
	probeFunc = `probe() {
p=$1
for c in tar gzip lzop md5sum sha256sum find xargs tee mkfifo; do command -v "$c" >/dev/null 2>&1 && echo "has $c"; done
tar --version 2>/dev/null | grep -q 'GNU tar' && echo "has gnutar"
if [ -d "$p" ]; then echo "type dir"; elif [ -f "$p" ]; then echo "type file"; elif [ -e "$p" ]; then echo "type other"; else echo "type none"; fi
if [ -L "$p" ]; then
  t=$(readlink -- "$p" 2>/dev/null) n=${p##*/}
  case $t in
  ".kubectl-concourse/$n/v."*"/$n") t=${t#".kubectl-concourse/$n/v."}; echo "link ours ${t%%/*}" ;;
  *) echo link ;;
  esac
fi
sz=0
if [ "$2" = size ] && [ -d "$p" ]; then sz=$(du -sk "$p/" 2>/dev/null | cut -f1); echo "size $sz"
elif [ "$2" = size ] && [ -e "$p" ]; then sz=$(du -skL "$p" 2>/dev/null | cut -f1); echo "size $sz"; fi
n=0
[ "${7:-0}" -gt 0 ] && [ -d "$p" ] && n=$(find "$p/" 2>/dev/null | head -n "$7" | wc -l) && echo "count $n"
z= big= poor= want=
if command -v lzop >/dev/null 2>&1; then z=lzop zc='lzop -c'; elif command -v gzip >/dev/null 2>&1; then z=gzip zc='gzip -1'; fi
[ "$4" -gt 0 ] && [ "${sz:-0}" -ge "$5" ] && { [ "${7:-0}" -eq 0 ] || [ "$n" -lt "$7" ] || [ -L "$p" ]; } && big=1
[ -n "$big" ] && [ -n "$z" ] && [ "$3" = ratio ] && [ -e "$p" ] || z=
if [ -n "$z" ] && [ -f "$p" ]; then
  raw=$(head -c 65536 -- "$p" | wc -c) out=$(head -c 65536 -- "$p" | $zc | wc -c)
  if [ "$raw" -gt 0 ] && [ $((out * 100)) -gt $((raw * $6)) ]; then echo "ratio $raw $out $z"; poor=1; fi
fi
if [ -n "$big" ] && [ -z "$poor" ]; then
  if [ -n "$z" ]; then echo "sample ask"; else echo sample; fi
  dd if=/dev/zero bs=65536 count=$(( $4 / 65536 )) 2>/dev/null
  [ -n "$z" ] && { read -r want <&3 || want=; }
fi
if [ "$want" = ratio ]; then
  if [ -f "$p" ]; then s() { head -c "$1" -- "$p"; }
  else s() { find "$p/" -type f -print0 2>/dev/null | xargs -0 cat 2>/dev/null | head -c "$1"; }; fi
  echo ratio-read
  raw=$(s 1048576 | wc -c)
  echo ratio-start
  out=$(s 1048576 | $zc | wc -c)
  echo "ratio $raw $out $z"
fi
echo decide
}
`

	// streamFunc defines stream, which sends $2 (or the NUL-separated
	// names on stdin when $2 is "-") from directory $1 as tar, compressed
	// when $3 is "gzip" or "lzop", then the end marker:
	// "kubectl-concourse-end" and $4, on stdout after the archive. A stream
	// that was cut on the way lacks it, even when the exec reports success
	// (a dropped connection can: docs/test-cluster.md). The fd juggling
	// returns tar's status through the pipe without pipefail, which dash
	// lacks.
	streamFunc = `stream() {
cd -- "$1" || exit
pack() { if [ "$2" = - ]; then xargs -0 -r tar cf -; else tar cf - "$2"; fi; }
case $3 in gzip) zc='gzip -1' ;; lzop) zc='lzop -c' ;; *) zc= ;; esac
if [ -n "$zc" ]; then
  { s=$( { { pack "$@" 3>&-; echo $? >&3; } | $zc >&4 3>&-; } 3>&1 ); } 4>&1
else
  pack "$@"; s=$?
fi
printf 'kubectl-concourse-end %s' "$4"
exit "$s"
}
`

	// streamScript is a download's retry: stream with the arguments given.
	streamScript = streamFunc + `stream "$@"`

	// downloadScript is a download's first attempt, in one exec: it probes
	// ($4 on are probe's), then streams ./$2 from directory $1 with end
	// marker $3 once stdin says "stream CODEC VERSION": VERSION ("-":
	// none) is the landed upload whose tree to send, since ./$2 is its
	// link. Any other word, or the end of stdin, ends it having sent
	// nothing: the plugin found nothing it can download.
	downloadScript = probeFunc + streamFunc + `d=$1 top=$2 nonce=$3; shift 3
probe "$@" 3<&0 </dev/null
read -r word codec ver || exit 0
[ "$word" = stream ] || exit 0
[ "$ver" = - ] || d=$d/.kubectl-concourse/${top#./}/v.$ver
stream "$d" "$top" "$codec" "$nonce"`

	// sumFiles prints, for the regular files under the directory it is
	// given, batches of: the number of files, their names each ended by a
	// NUL, then the checksum line of program $sum (md5sum or sha256sum) for
	// each, in the same order. A name may hold any byte but NUL and '/' (a
	// newline too): the parser knows each name before it reads its line, so
	// no name can be confused with another, whatever the tool (busybox or
	// GNU) makes of it.
	sumFiles = `find "$1" -type f -exec sh -c 'printf "%s\n" "$#"; printf "%s\0" "$@"; exec "$0" -- "$@"' "$sum" {} +`

	// manifestScript prints the sums (program $3) of every regular file
	// under $2, in directory $1.
	manifestScript = `cd -- "$1" || exit
sum=$3
set -- "$2"
` + sumFiles

	// awaitedManifestScript is manifestScript started with a download's
	// probe, so that its round trip overlaps the probe: it waits for
	// "sums PROGRAM VERSION" on stdin, VERSION ("-": none) being the
	// landed upload whose tree to list, since ./$2 is its link (as
	// downloadScript's). Any other word, or the end of stdin, ends it
	// having listed nothing.
	awaitedManifestScript = `read -r word sum ver || exit 0
[ "$word" = sums ] || exit 0
d=$1 top=$2
[ "$ver" = - ] || d=$d/.kubectl-concourse/${top#./}/v.$ver
cd -- "$d" || exit
set -- "$top"
` + sumFiles

	// listScript prints every name under $2, NUL terminated.
	listScript = `cd -- "$1" || exit
find "$2" -print0`

	// sumFilesParallel is sumFiles over $1 on up to four of the
	// container's cores: the sums of an upload's files are the one part of
	// it that runs alone (tar is done, the plugin hashes its side on one
	// core), so one md5sum would leave the others idle (0.26 s of the
	// 5,000-file tree here). Batches of at most $per names run side by
	// side, each into a file of its own under directory $ps (a process's
	// batches are appended: a pid used again appends after the earlier
	// ones), printed once all are done: each batch stays whole, which is
	// all parseSums needs, in any order; then it exits. The names reach
	// xargs through a file, never a pipe: busybox sh gives xargs a SIGCHLD
	// handler without SA_RESTART, so a batch that ends while xargs waits on
	// a pipe cuts the name it is reading in two (3 of 30 runs over
	// kubernetes' 9,123 files here; none of 60 through a file, whose reads
	// a signal does not interrupt). Without more than
	// one core, an xargs with -P or a new directory $ps, it does nothing,
	// and sumFiles follows.
	sumFilesParallel = `w=$(nproc 2>/dev/null) || w=1
[ "${w:-1}" -gt 4 ] 2>/dev/null && w=4
if [ "$per" -gt 0 ] 2>/dev/null && [ "${w:-1}" -gt 1 ] 2>/dev/null && xargs -r -P 2 true </dev/null 2>/dev/null && mkdir -- "$ps" 2>/dev/null; then
  find "$1" -type f -print0 >"$ps.names" &&
    xargs -0 -r -P "$w" -n "$per" sh -c 'd=$1; shift; { printf "%s\n" "$#"; printf "%s\0" "$@"; "$0" -- "$@"; } >>"$d/$$"' "$sum" "$ps" <"$ps.names"
  s=$?
  rm -f -- "$ps.names"
  for f in "$ps"/*; do [ -f "$f" ] && cat -- "$f"; done
  rm -rf -- "$ps"
  exit "$s"
fi
`

	// receiveFunc defines receive, which unpacks stdin into directory $1
	// and names its receiving processes in $2 (so that an interrupted
	// upload can end them before it removes the staging). First it reads
	// the plugin's decision, one line of stdin: "go Z MODE SUM BATCH NONCE
	// OPTIONS..."; any other word, or the end of stdin, ends it having
	// touched nothing. Z is "gzip" or "none". The archive ends with the
	// entry $3, whose content is NONCE: unless tar extracted it so, the
	// stream was cut on the way in (tar itself takes an archive cut between
	// two entries for a whole one), and nothing is printed. With MODE
	// "stream", the stream itself is hashed with checksum program SUM
	// (md5sum) while it arrives, through tee and a fifo beside $2, and its
	// one line printed; with "files", the sums (program SUM) of the files
	// under $4 once tar is done, in batches of BATCH names on several
	// cores (sumFilesParallel) when BATCH is above 0. Either saves an exec.
	// OPTIONS are tar's (a fixed vocabulary: split on spaces, with globbing
	// off so that no word can ever expand to names in the directory). tar runs in
	// the background so that its pid is known; POSIX gives a background job
	// /dev/null as stdin, hence fd 3. Symlinks are data: busybox releases
	// that skip those that are absolute or hold ".." (around 1.28) land
	// them with EXTRACT_UNSAFE_SYMLINKS=1, later ones and GNU tar anyway;
	// the plugin never sends an entry below a symlink, which is what such
	// a link would be dangerous for.
	receiveFunc = `receive() {
st=$1 pf=$2 end=$3 top=$4
read -r word z mode sum per nonce opts || exit 0
[ "$word" = go ] || exit 0
v=- hs=-
case $mode in files) v=$top ;; stream) hs=$sum ;; esac
set -f; set -- $opts; set +f
export EXTRACT_UNSAFE_SYMLINKS=1
mkdir -p -- "$st" && cd -- "$st" || exit
rm -f -- "$end"
exec 3<&0
h=
if [ "$hs" = - ]; then
  if [ "$z" = gzip ]; then gzip -dc <&3 | tar xf - "$@" & else tar xf - "$@" <&3 & fi
else
  f=$pf.fifo
  rm -f -- "$f" && mkfifo -- "$f" || exit
  "$hs" <"$f" &
  h=$!
  if [ "$z" = gzip ]; then tee -- "$f" <&3 | gzip -dc | tar xf - "$@" & else tee -- "$f" <&3 | tar xf - "$@" & fi
fi
t=$!
exec 3<&-
echo "$$ $t $h" >"$pf"
wait "$t" || { s=$?; [ -n "$h" ] && kill "$h" 2>/dev/null; exit "$s"; }
if [ -n "$h" ]; then wait "$h" || exit; rm -f -- "$f"; fi
rm -f -- "$pf"
got=$(cat -- "$end" 2>/dev/null)
rm -f -- "$end"
if [ "$got" != "$nonce" ]; then echo "` + cutMessage + `" >&2; exit 1; fi
[ "$v" = - ] && exit 0
set -- "$v"
# Each attempt's batches have a directory of their own, since the hashers
# of an attempt that was cut may outlive it: theirs is removed here, and
# they cannot write into this one.
rm -rf -- "$pf".sums.*
ps=$pf.sums.$nonce
` + sumFilesParallel + sumFiles + `
}
`

	// receiveScript is an upload's retry: receive with the arguments given.
	receiveScript = receiveFunc + `receive "$@"`

	// uploadScript is an upload's first attempt, in one exec: it probes
	// ($5 on are probe's), then receives as receive "$1" "$2" "$3" "$4".
	uploadScript = probeFunc + receiveFunc + `st=$1 pf=$2 end=$3 top=$4; shift 4
probe "$@" 3<&0 </dev/null
receive "$st" "$pf" "$end" "$top"`

	// cutMessage is what receiveScript says when the archive lacks its end.
	cutMessage = "the archive ended before its end marker: the stream was cut on the way in"

	// endReceivers ends the receiving processes named in file $pf and
	// waits (five seconds at most) until they are gone.
	endReceivers = `if [ -f "$pf" ]; then
  pids=$(cat -- "$pf")
  for p in $pids; do kill "$p" 2>/dev/null; done
  i=0
  while [ "$i" -lt 50 ]; do
    alive=
    for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -z "$alive" ] && break
    sleep 0.1; i=$((i+1))
  done
  rm -f -- "$pf"
fi
`

	// settleScript ends the receivers named in $1 (after a broken
	// stream), so that a retry writes alone.
	settleScript = `pf=$1
` + endReceivers

	// abortScript ends what still receives into staging directory $1 (its
	// receivers are named in $1.pids) and removes it: removing it while tar
	// still writes would leave part of it behind. The state directory goes
	// too when nothing else is in it.
	abortScript = `st=$1 pf=$1.pids
` + endReceivers + `rm -rf -- "$st" "$pf.fifo" "$pf".sums.*
rmdir -- "${st%/*}" "${st%/*/*}" 2>/dev/null
exit 0`

	// commitScript lands staging.$2 of state directory $1 as $3/$4, a
	// "dir" or a "file" ($5), under the state directory's lock. The lock
	// is a directory (mkdir is atomic); one older than a minute belongs to
	// a killed run and is broken. After the swap, under the lock, the
	// versions the link no longer names, what killed runs left (staging
	// whose receivers are gone and that nothing touched for ten minutes)
	// and a replaced real directory move to trash, which is emptied once
	// the lock is released, in the background. Exit 75 (EX_TEMPFAIL): the
	// lock stayed taken. It ends by saying "landed $2": an exec that ends
	// as a success without it was cut on the way.
	commitScript = `s=$1 id=$2 d=$3 n=$4 kind=$5
lock=$s/lock
i=0
until mkdir -- "$lock" 2>/dev/null; do
  if [ -n "$(find "$lock" -maxdepth 0 -mmin +1 2>/dev/null)" ] && mv -- "$lock" "$s/trash.lock.$id" 2>/dev/null; then continue; fi
  i=$((i+1))
  if [ "$i" -gt 300 ]; then echo "another upload to $d/$n holds the lock $lock" >&2; exit 75; fi
  sleep 0.1
done
trap 'rmdir -- "$lock" 2>/dev/null' EXIT
v=$s/v.$id
mv -T -- "$s/staging.$id" "$v" || exit
rm -rf -- "$s/staging.$id.pids" "$s/staging.$id.pids.fifo" "$s/staging.$id.pids.sums".*
if [ "$kind" = file ]; then
  if [ -d "$d/$n" ] && [ ! -L "$d/$n" ]; then echo "$d/$n is a directory in the container; a file cannot replace it" >&2; exit 1; fi
  mv -f -T -- "$v/$n" "$d/$n" || exit
else
  ln -s -- ".kubectl-concourse/$n/v.$id/$n" "$s/link.$id" || exit
  if [ -d "$d/$n" ] && [ ! -L "$d/$n" ]; then
    # The step's own directory: moved aside first, the one moment the
    # destination is missing (only the first upload over it).
    mv -T -- "$d/$n" "$s/prev.$id" || exit
  fi
  if ! mv -f -T -- "$s/link.$id" "$d/$n"; then
    st=$?
    [ -e "$s/prev.$id" ] && mv -T -- "$s/prev.$id" "$d/$n"
    exit "$st"
  fi
fi
cur=$(readlink -- "$d/$n" 2>/dev/null)
for e in "$s"/v.* "$s"/prev.* "$s"/link.*; do
  [ -e "$e" ] || [ -L "$e" ] || continue
  [ ".kubectl-concourse/$n/${e##*/}/$n" = "$cur" ] && continue
  mv -- "$e" "$s/trash.${e##*/}"
done
for e in "$s"/staging.*; do
  case $e in *.pids|*.fifo|*.sums.*) continue ;; esac
  [ -e "$e" ] || continue
  if [ -f "$e.pids" ]; then
    alive=
    for p in $(cat -- "$e.pids"); do kill -0 "$p" 2>/dev/null && alive=1; done
    [ -n "$alive" ] && continue
  fi
  [ -n "$(find "$e" "$e.pids" -mmin -10 2>/dev/null | head -n 1)" ] && continue
  mv -- "$e" "$s/trash.${e##*/}" && rm -rf -- "$e.pids" "$e.pids.fifo" "$e.pids.sums".*
done
rmdir -- "$lock"
trap - EXIT
# Off the critical path: the exec returns while the old tree goes (what a
# killed removal leaves, the next commit removes).
( rm -rf -- "$s"/trash.*; rmdir -- "$s" "$d/.kubectl-concourse" ) </dev/null >/dev/null 2>&1 &
echo "landed $id"`
)

// awaitedCommitScript is commitScript started with the transfer, so that
// its exec's round trip overlaps the stream instead of following it: it
// lands only once its stdin says "commit"; any other word, or the end of
// stdin, ends it having done nothing.
const awaitedCommitScript = `read -r word || exit 0
[ "$word" = commit ] || exit 0
` + commitScript

// stateDirName is the directory beside an upload's destination that
// holds its staging and versions; no upload may be named so.
const stateDirName = ".kubectl-concourse"
