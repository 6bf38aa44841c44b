#!/usr/bin/env bash
# The `make demo` tour: start the test cluster in the background, seed a
# Concourse-like installation (hack/demo/seed.yaml), run each command through
# the real kubectl, and leave the cluster running for the user. Non-interactive:
# every step either succeeds or the script stops with its error.
#
# Expects `make build cluster` done (bin/kubectl-concourse, bin/kubectl,
# bin/testcluster and the control plane), and root (pods run chrooted).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
bin=$root/bin
dir=${DEMO_DIR:-$root/.cache/demo}

export PATH="$bin:$PATH"
export KUBECONFIG="$dir/kubeconfig"

# The nodes' images are made of Debian's static busybox and bash: say the
# one line that installs them before building anything else.
missing=()
for pkg in busybox-static bash-static; do
	dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "demo: the test cluster's images need Debian's ${missing[*]}; install with:" >&2
	echo "  apt-get install -y busybox-static bash-static" >&2
	exit 1
fi
if [ "$(id -u)" != 0 ]; then
	echo "demo: run as root: the test cluster's nodes run pods as chrooted processes" >&2
	exit 1
fi

say() { printf '\n\033[1m# %s\033[0m\n' "$*"; }
# run shows a command as it could be pasted into a shell (single-quoting
# the words that need it), then runs it.
run() {
	local line='$' word
	for word in "$@"; do
		if [[ $word =~ ^[A-Za-z0-9_./:=@%+,-]+$ ]]; then
			line+=" $word"
		else
			line+=" '${word//\'/\'\\\'\'}'"
		fi
	done
	printf '%s\n' "$line"
	"$@"
}

# A cluster left by an earlier demo is stopped first: its state dir is reused.
if [ -f "$dir/testcluster.pid" ] && kill -0 "$(cat "$dir/testcluster.pid")" 2>/dev/null; then
	kill "$(cat "$dir/testcluster.pid")"
	while kill -0 "$(cat "$dir/testcluster.pid")" 2>/dev/null; do sleep 0.2; done
fi
rm -rf "$dir"
mkdir -p "$dir"

say "Starting the test cluster (kube-apiserver v1.37.2 built from modules, two nodes run pods as chrooted processes)"
nohup "$bin/testcluster" up --dir "$dir" --agents 2 >"$dir/testcluster.out" 2>&1 &
echo $! >"$dir/testcluster.pid"
for _ in $(seq 1 900); do
	grep -qx ready "$dir/testcluster.out" 2>/dev/null && break
	if ! kill -0 "$(cat "$dir/testcluster.pid")" 2>/dev/null; then
		cat "$dir/testcluster.out" >&2
		echo "demo: the test cluster did not start" >&2
		exit 1
	fi
	sleep 0.2
done
grep -qx ready "$dir/testcluster.out" || { echo "demo: the test cluster is not ready after 3 minutes" >&2; exit 1; }

say "Seeding: teams main and ops, pipeline hello (job fetch-and-use-ubuntu, build 1 done, build 2 running), a check container, a task cache"
run kubectl label --overwrite node node-1 node-2 concourse-ci.org/worker=true
run kubectl label --overwrite node node-2 concourse-ci.org/team=ops tags.concourse-ci.org/gpu=true
until kubectl -n default get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
run kubectl apply -f hack/demo/seed.yaml
for ns in team-main team-ops; do
	until kubectl -n "$ns" get serviceaccount default >/dev/null 2>&1; do sleep 0.2; done
done
run kubectl -n team-main wait --for=jsonpath='{.status.phase}'=Succeeded --timeout=120s \
	pod/hello-1-get-ubuntu pod/hello-1-use-it pod/hello-2-get-ubuntu
run kubectl -n team-main wait --for=condition=Ready --timeout=120s pod/hello-2-use-it pod/hello-check-ubuntu
run kubectl -n team-ops wait --for=condition=Ready --timeout=120s pod/deploy-1-ship

# ---- The tour. THE LEAD EXTENDS THIS: one `say` + `run` per command. --------
say "fly workers -> nodes as workers, with team and tags"
run kubectl concourse workers

say "fly containers -> one row per step container, every namespace"
run kubectl concourse containers -A

say "fly volumes -> the task cache PVC and the volumes of step pods"
run kubectl concourse volumes -n team-main

say "fly builds -> builds from their step pods, newest first"
run kubectl concourse builds -A

say "fly watch -> the step logs of finished build 1, in order; the exit status is the build's"
run kubectl concourse watch -n team-main -j hello/fetch-and-use-ubuntu -b 1 --settle 2s

say "fly hijack -> a command in the running step, in its working directory"
run kubectl concourse hijack -n team-main -j hello/fetch-and-use-ubuntu -b 2 -s use-it -- sh -c 'pwd; ls'

say "fly logs -> the log of one step of finished build 1"
run kubectl concourse logs -n team-main -j hello/fetch-and-use-ubuntu -b 1 -s use-it

say "fly hijack on a finished step -> --debug runs a copy of it from its image, with its volumes"
run kubectl concourse hijack -n team-main -j hello/fetch-and-use-ubuntu -b 1 -s use-it --debug -- sh -c 'pwd; ls'

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/src" "$work/back"
echo "from my laptop" >"$work/src/note.txt"

say "fly upload / download -> files into the running step and back out"
run kubectl concourse upload -n team-main -j hello/fetch-and-use-ubuntu -b 2 -s use-it "$work/src"
run kubectl concourse download -n team-main -j hello/fetch-and-use-ubuntu -b 2 -s use-it src "$work/back"
run cat "$work/back/src/note.txt"

say "fly execute -> a task file run as a one-off build: an input uploaded, the log live, an output brought back"
cat >"$work/task.yml" <<'TASK'
platform: linux
image_resource: {type: registry-image, source: {repository: busybox}}
inputs: [{name: src}]
outputs: [{name: out}]
run: {path: sh, args: [-c, 'wc -c src/note.txt; cp src/note.txt out/; echo built >out/result']}
TASK
run kubectl concourse execute -n team-main -c "$work/task.yml" -i src="$work/src" -o out="$work/out"
run cat "$work/out/result"

say "fly execute again, after a change: the inner loop"
echo "changed" >>"$work/src/note.txt"
run kubectl concourse execute -n team-main -c "$work/task.yml" -i src="$work/src" -o out="$work/out"

say "The cluster keeps running. To use it:"
cat <<EOF
  export KUBECONFIG=$KUBECONFIG PATH=$bin:\$PATH
  kubectl concourse containers -A
To stop it:
  kill $(cat "$dir/testcluster.pid")
EOF
