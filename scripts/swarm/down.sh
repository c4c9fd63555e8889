#!/usr/bin/env bash
# Stops what scripts/swarm/up.sh started and removes its state dir:
# services, swarm membership, both dockerds (the swarm's and the plain one), their containers,
# containerds and shims, the plain engine's networks, the registry.
# Every process is ended by its pid (from the pid files, or found by the state dir's
# paths in its command line), never by name, so another dockerd on the machine is untouched.
#
# Usage: scripts/swarm/down.sh     (SWARM_DIR defaults to /tmp/dockercloud-swarm)
#        SWARM_KEEP=1 scripts/swarm/down.sh   stops everything but keeps the state dir
set -uo pipefail

SWARM_DIR="${SWARM_DIR:-/tmp/dockercloud-swarm}"
WAIT_SECONDS="${SWARM_WAIT_SECONDS:-20}"
SOCK="$SWARM_DIR/docker.sock"
PLAIN="$SWARM_DIR/plain"

log() { printf '[swarm-down %s] %s\n' "$(date +%T)" "$*" >&2; }

if [ ! -d "$SWARM_DIR" ]; then log "nothing at $SWARM_DIR"; exit 0; fi
case "$SWARM_DIR" in /|/tmp|/tmp/|/var|/var/lib|"$HOME") log "refusing SWARM_DIR=$SWARM_DIR"; exit 1 ;; esac

DOCKER_BIN="${DOCKER_BIN:-$(command -v docker || true)}"
export DOCKER_HOST="unix://$SOCK" DOCKER_CONFIG="$SWARM_DIR/cli"
docker() { timeout 20 "$DOCKER_BIN" "$@"; }
plain_docker() { docker -H "unix://$PLAIN/docker.sock" "$@"; }

pid_of() { [ -f "$1" ] && cat "$1" 2>/dev/null; }
# A live process (a zombie waiting for init to reap it counts as gone).
alive() {
  local stat
  [ -n "${1:-}" ] && { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}

# stop_pid PID NAME: SIGTERM, wait up to WAIT_SECONDS, then SIGKILL.
stop_pid() {
  local pid="$1" name="$2"
  alive "$pid" || return 0
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null
  for _ in $(seq 1 $((WAIT_SECONDS * 10))); do alive "$pid" || { log "$name stopped"; return 0; }; sleep 0.1; done
  log "$name (pid $pid) ignored SIGTERM; killing"
  kill -KILL "$pid" 2>/dev/null
  sleep 0.2
}

# Pids whose command line mentions the state dir (containerd, its shims, runc, the registry),
# and their descendants (the containers' processes, children of the shims).
pids_under_state_dir() {
  local f pid roots=()
  # The pattern comes from a file so that grep's own command line does not match it.
  while read -r f; do
    pid="${f#/proc/}" pid="${pid%/cmdline}"
    [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] || roots+=("$pid")
  done < <(grep -lasF -f <(printf '%s\n' "$SWARM_DIR/") /proc/[0-9]*/cmdline)
  [ "${#roots[@]}" -gt 0 ] || return 0
  ps -eo pid=,ppid= | awk -v roots="${roots[*]}" '
    { parent[$1] = $2 }
    END {
      n = split(roots, r, " "); for (i = 1; i <= n; i++) keep[r[i]] = 1
      do { changed = 0; for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; changed = 1 } } while (changed)
      for (p in keep) print p
    }' | sort -n
}

dockerd_pid=$(pid_of "$SWARM_DIR/dockerd.pid" || pid_of "$SWARM_DIR/dockerd.launch.pid" || true)
if [ -n "$DOCKER_BIN" ] && alive "$dockerd_pid" && docker version >/dev/null 2>&1; then
  if [ "$(docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null)" = active ]; then
    services=$(docker service ls -q 2>/dev/null)
    # shellcheck disable=SC2086
    [ -z "$services" ] || { log "removing services"; docker service rm $services >/dev/null 2>&1; }
    log "leaving the swarm"
    docker swarm leave --force >/dev/null 2>&1 || log "swarm leave failed (going on)"
  fi
  containers=$(docker ps -aq 2>/dev/null)
  # shellcheck disable=SC2086
  [ -z "$containers" ] || { log "removing containers"; docker rm -f $containers >/dev/null 2>&1; }
fi

# The plain engine: its containers (Compose projects' ones), then its networks, whose br-<id>
# interfaces (and host routes) would outlive dockerd otherwise.
plain_pid=$(pid_of "$PLAIN/dockerd.pid" || pid_of "$PLAIN/dockerd.launch.pid" || true)
if [ -n "$DOCKER_BIN" ] && alive "$plain_pid" && plain_docker version >/dev/null 2>&1; then
  containers=$(plain_docker ps -aq 2>/dev/null)
  # shellcheck disable=SC2086
  [ -z "$containers" ] || { log "removing the plain engine's containers"; plain_docker rm -f $containers >/dev/null 2>&1; }
  plain_docker network prune -f >/dev/null 2>&1 || log "network prune on the plain engine failed (going on)"
fi

# The managed containerds: recorded by up.sh, or still in their pid files under the exec roots.
containerd_pid=$(pid_of "$SWARM_DIR/exec/containerd/containerd.pid" || pid_of "$SWARM_DIR/containerd.pid" || true)
plain_containerd_pid=$(pid_of "$PLAIN/exec/containerd/containerd.pid" || pid_of "$PLAIN/containerd.pid" || true)

stop_pid "$plain_pid" "plain dockerd"
stop_pid "$plain_containerd_pid" "plain containerd"
stop_pid "$dockerd_pid" dockerd
stop_pid "$containerd_pid" containerd
stop_pid "$(pid_of "$SWARM_DIR/registry.pid" || true)" registry

# Whatever is left (after a crashed dockerd, say): shims, reparented to init and so in no
# process group of ours, and the containers' processes under them. A container's PID 1 such
# as sleep ignores SIGTERM, and nothing here needs a graceful end: SIGKILL, then wait.
left=$(pids_under_state_dir)
if [ -n "$left" ]; then
  log "killing leftover processes: $(tr '\n' ' ' <<<"$left")"
  # shellcheck disable=SC2086
  kill -KILL $left 2>/dev/null
  for _ in $(seq 1 $((WAIT_SECONDS * 10))); do
    still=""; for pid in $left; do alive "$pid" && still="$still $pid"; done
    [ -n "$still" ] || break
    sleep 0.1
  done
  [ -z "$still" ] || log "WARNING: still running:$still"
fi

# Mounts dockerd left behind (netns bind mounts, shm) would make rm fail.
if [ -r /proc/self/mounts ]; then
  awk -v d="$SWARM_DIR/" 'index($2, d) == 1 { print $2 }' /proc/self/mounts | sort -r | while read -r m; do
    umount -l "$m" 2>/dev/null || true
  done
fi

# Swarm's docker_gwbridge is a host interface that outlives dockerd; drop it unless another
# dockerd runs (a later up.sh would reuse it anyway).
other_dockerd=""
for pid in $(pgrep -x dockerd); do alive "$pid" && other_dockerd=1; done
if [ -z "$other_dockerd" ] && ip link show docker_gwbridge >/dev/null 2>&1; then
  ip link delete docker_gwbridge 2>/dev/null && log "deleted interface docker_gwbridge"
fi

# The plain engine's bridges left by a crashed dockerd (the prune above needs a live one): br-*
# interfaces with an address in the pool up.sh gave it, unless a running dockerd was given that
# pool (a second copy of this setup would have been given another one).
pool=$(cat "$PLAIN/pool" 2>/dev/null || true)
dockerd_cmdlines=$(for pid in $(pgrep -x dockerd); do tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null; echo; done)
if [ -n "$pool" ] && ! grep -qF "base=$pool," <<<"$dockerd_cmdlines"; then
  for dev in $(ip -o -4 addr show to "$pool" 2>/dev/null | awk '$2 ~ /^br-/ { print $2 }' | sort -u); do
    ip link delete "$dev" 2>/dev/null && log "deleted interface $dev"
  done
fi

if [ "${SWARM_KEEP:-}" = 1 ]; then log "kept $SWARM_DIR"; exit 0; fi
rm -rf "$SWARM_DIR" 2>/dev/null || { sleep 1; rm -rf "$SWARM_DIR"; }
if [ -e "$SWARM_DIR" ]; then log "could not remove all of $SWARM_DIR"; exit 1; fi
log "removed $SWARM_DIR"
