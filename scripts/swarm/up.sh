#!/usr/bin/env bash
# Starts a throwaway single-node Docker Swarm for the swarm end-to-end suite:
#   - dockerd (vfs storage, no iptables, no bridge) in its own state dir and socket,
#   - swarm mode on 127.0.0.1,
#   - a local registry (Debian's docker-registry) on a free loopback port,
#   - a tiny busybox image pushed there as 127.0.0.1:<port>/bb:1.
# Then writes $SWARM_DIR/env (KEY=value lines: DOCKER_HOST, REGISTRY, IMAGE, ...).
#
# Usage: scripts/swarm/up.sh        (as root; SWARM_DIR defaults to /tmp/dockercloud-swarm)
#        set -a; . "$SWARM_DIR/env"; set +a
# Stop:  scripts/swarm/down.sh
#
# Re-running it while everything is up only re-checks. SWARM_REPUSH=1 builds and pushes the
# image again (a new digest under the same tag); SWARM_IMAGE_EXTRA=text also puts that text
# in /etc/extra of the new image.
# Logs: $SWARM_DIR/logs/{apt,dockerd,registry,push}.log
set -euo pipefail

SWARM_DIR="${SWARM_DIR:-/tmp/dockercloud-swarm}"
WAIT_SECONDS="${SWARM_WAIT_SECONDS:-60}"
IMAGE_NAME="${SWARM_IMAGE_NAME:-bb:1}"

STATE="$SWARM_DIR/docker"          # dockerd data root
EXEC="$SWARM_DIR/exec"             # dockerd exec root (its managed containerd lives under it)
SOCK="$SWARM_DIR/docker.sock"
LOGS="$SWARM_DIR/logs"
REG="$SWARM_DIR/registry"

log() { printf '[swarm-up %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (dockerd needs it)"
mkdir -p "$SWARM_DIR" "$LOGS" "$REG/data"

trap 'die "failed at line $LINENO: $BASH_COMMAND"' ERR

# A live process (a zombie waiting for init to reap it counts as gone).
alive_pid() {
  local stat
  [ -n "${1:-}" ] && { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
  stat="${stat##*) }"
  [ "${stat%% *}" != Z ]
}
alive() { [ -f "$1" ] && alive_pid "$(cat "$1")"; }

# wait_for SECONDS WHAT CMD...: runs CMD until it succeeds, or fails after SECONDS. With
# WATCH_PID and WATCH_LOG set, fails at once (with the log's tail) when that process is gone.
wait_for() {
  local secs="$1" what="$2"; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ -n "${WATCH_PID:-}" ] && ! alive_pid "$WATCH_PID"; then
      tail -20 "$WATCH_LOG" >&2
      die "exited while waiting for $what"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then die "timed out after ${secs}s waiting for $what"; fi
    sleep 0.2
  done
}

# free_port tcp|udp: a port nothing listens on, in 20000..45000 (inside 1024-49151, below the
# usual ephemeral range so a client connection is unlikely to take it in the meantime).
free_port() {
  local proto="$1" flag=-tln port
  [ "$proto" = udp ] && flag=-uln
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 25000))
    if ! ss -H "$flag" "sport = :$port" | grep -q .; then echo "$port"; return 0; fi
  done
  die "no free $proto port found"
}

# ---------------------------------------------------------------- packages
need=()
command -v dockerd >/dev/null || need+=(docker.io)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
[ -x /bin/busybox ] || need+=(busybox-static)
command -v ss >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]} (log: $LOGS/apt.log)"
  t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  # The packages ship services (docker, containerd, docker-registry); none must start: this
  # script runs its own, in its own dirs. policy-rc.d answering 101 forbids starting them.
  policy_added=""
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    policy_added=1
  fi
  { apt-get update && apt-get install -y --no-install-recommends "${need[@]}"; } >"$LOGS/apt.log" 2>&1 \
    || { [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d; tail -20 "$LOGS/apt.log" >&2; die "apt-get failed"; }
  [ -n "$policy_added" ] && rm -f /usr/sbin/policy-rc.d
  log "installed in $((SECONDS - t0))s"
fi
DOCKER_BIN="${DOCKER_BIN:-$(command -v docker)}"
[ -n "$DOCKER_BIN" ] || die "no docker CLI found"
export DOCKER_HOST="unix://$SOCK"
export DOCKER_CONFIG="$SWARM_DIR/cli"  # keep the CLI's config out of ~/.docker
docker() { "$DOCKER_BIN" "$@"; }

# ---------------------------------------------------------------- dockerd
if alive "$SWARM_DIR/dockerd.pid" && docker version >/dev/null 2>&1; then
  log "dockerd already running (pid $(cat "$SWARM_DIR/dockerd.pid"))"
else
  log "starting dockerd (log: $LOGS/dockerd.log)"
  mkdir -p "$STATE" "$EXEC"
  # Its own config file: none of the machine's /etc/docker/daemon.json, and the trust key
  # dockerd 20.10 writes kept here rather than in /etc/docker/key.json.
  printf '{ "deprecated-key-path": "%s" }\n' "$SWARM_DIR/key.json" >"$SWARM_DIR/daemon.json"
  # setsid: its own session, so it outlives this shell and a ^C to the caller.
  setsid dockerd \
    --data-root "$STATE" \
    --exec-root "$EXEC" \
    --pidfile "$SWARM_DIR/dockerd.pid" \
    --config-file "$SWARM_DIR/daemon.json" \
    --host "$DOCKER_HOST" \
    --storage-driver vfs \
    --iptables=false --ip6tables=false --bridge=none \
    --log-level info \
    </dev/null >"$LOGS/dockerd.log" 2>&1 &
  echo $! >"$SWARM_DIR/dockerd.launch.pid"
  t0=$SECONDS
  WATCH_PID=$(cat "$SWARM_DIR/dockerd.launch.pid") WATCH_LOG="$LOGS/dockerd.log" \
    wait_for "$WAIT_SECONDS" "dockerd to answer on $SOCK (see $LOGS/dockerd.log)" docker version
  log "dockerd up in $((SECONDS - t0))s (server $(docker version -f '{{.Server.Version}}'))"
fi
# The managed containerd of this dockerd, for down.sh (it is not in dockerd's process group).
[ -f "$EXEC/containerd/containerd.pid" ] && cp "$EXEC/containerd/containerd.pid" "$SWARM_DIR/containerd.pid"

# ---------------------------------------------------------------- swarm
swarm_state() { docker info -f '{{.Swarm.LocalNodeState}}' 2>/dev/null; }
swarm_active() { [ "$(swarm_state)" = active ]; }
node_ready() { docker node ls -f role=manager --format '{{.Status}}' | grep -qx Ready; }
if swarm_active; then
  log "swarm already active"
else
  lport=$(free_port tcp)
  dport=$(free_port udp)
  log "swarm init (listen 127.0.0.1:$lport, data path port $dport)"
  docker swarm init --advertise-addr 127.0.0.1 --listen-addr "127.0.0.1:$lport" \
    --data-path-port "$dport" >"$LOGS/swarm-init.log" 2>&1 \
    || { cat "$LOGS/swarm-init.log" >&2; die "swarm init failed"; }
  wait_for "$WAIT_SECONDS" "swarm to become active" swarm_active
fi
wait_for "$WAIT_SECONDS" "the swarm node to be ready" node_ready

# ---------------------------------------------------------------- registry
if alive "$SWARM_DIR/registry.pid" && [ -f "$REG/addr" ] \
  && curl -fsS "http://$(cat "$REG/addr")/v2/" >/dev/null 2>&1; then
  REGISTRY=$(cat "$REG/addr")
  log "registry already running on $REGISTRY"
else
  REGISTRY="127.0.0.1:$(free_port tcp)"
  cat >"$REG/config.yml" <<EOF
version: 0.1
log:
  level: info
storage:
  filesystem:
    rootdirectory: $REG/data
  delete:
    enabled: true
http:
  addr: $REGISTRY
EOF
  log "starting registry on $REGISTRY (log: $LOGS/registry.log)"
  setsid /usr/bin/docker-registry serve "$REG/config.yml" </dev/null >"$LOGS/registry.log" 2>&1 &
  echo $! >"$SWARM_DIR/registry.pid"
  echo "$REGISTRY" >"$REG/addr"
  WATCH_PID=$(cat "$SWARM_DIR/registry.pid") WATCH_LOG="$LOGS/registry.log" \
    wait_for "$WAIT_SECONDS" "registry on $REGISTRY (see $LOGS/registry.log)" curl -fsS "http://$REGISTRY/v2/"
fi
IMAGE="$REGISTRY/$IMAGE_NAME"

# ---------------------------------------------------------------- image
# A root filesystem of one static busybox and a link per applet (sh, sleep, env, ...).
# SWARM_IMAGE_EXTRA=text adds /etc/extra with that text: a way to push a different
# digest under the same tag.
build_rootfs_tar() {
  local root="$SWARM_DIR/rootfs"
  rm -rf "$root" && mkdir -p "$root/bin" "$root/etc" "$root/tmp" "$root/proc" "$root/sys" "$root/dev"
  cp /bin/busybox "$root/bin/busybox"
  # bin/<applet> -> busybox for every applet (perl: one process, not one ln per applet).
  /bin/busybox --list | BIN="$root/bin" perl -ne 'chomp; $_ eq "busybox" or symlink("busybox", "$ENV{BIN}/$_") or die "$_: $!"'
  echo "root:x:0:0:root:/:/bin/sh" >"$root/etc/passwd"
  echo "root:x:0:" >"$root/etc/group"
  [ -z "${SWARM_IMAGE_EXTRA:-}" ] || printf '%s\n' "$SWARM_IMAGE_EXTRA" >"$root/etc/extra"
  tar -C "$root" --numeric-owner --owner=0 --group=0 --sort=name -cf - .
}
# The digest the registry serves for the tag, empty when it has none.
registry_digest() {
  curl -fsS -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$REGISTRY/v2/${IMAGE_NAME%%:*}/manifests/${IMAGE_NAME#*:}" 2>/dev/null \
    | tr -d '\r' | awk -F': ' 'tolower($1) == "docker-content-digest" { print $2 }' || true
}
DIGEST=$(registry_digest)
# docker import stamps the time into the image, so each push is a new digest: push only when
# the registry lacks the tag (or when asked to), so that a re-run leaves running services' image alone.
if [ -n "$DIGEST" ] && [ -z "${SWARM_IMAGE_EXTRA:-}" ] && [ "${SWARM_REPUSH:-}" != 1 ]; then
  log "registry already has $IMAGE ($DIGEST)"
else
  log "building and pushing $IMAGE (log: $LOGS/push.log)"
  t0=$SECONDS
  build_rootfs_tar | docker import --change 'ENV PATH=/bin' --change 'CMD ["sh"]' - "$IMAGE" >"$LOGS/push.log" 2>&1 \
    || { cat "$LOGS/push.log" >&2; die "docker import failed"; }
  docker push "$IMAGE" >>"$LOGS/push.log" 2>&1 || { cat "$LOGS/push.log" >&2; die "docker push failed"; }
  DIGEST=$(registry_digest)
  [ -n "$DIGEST" ] || die "registry has no digest for $IMAGE after the push"
  log "pushed $IMAGE@$DIGEST in $((SECONDS - t0))s"
fi

# ---------------------------------------------------------------- env
cat >"$SWARM_DIR/env.tmp" <<EOF
DOCKER_HOST=$DOCKER_HOST
DOCKER_CONFIG=$DOCKER_CONFIG
DOCKER_SOCK=$SOCK
DOCKER_BIN=$DOCKER_BIN
REGISTRY=$REGISTRY
IMAGE=$IMAGE
IMAGE_DIGEST=$DIGEST
SWARM_DIR=$SWARM_DIR
EOF
mv "$SWARM_DIR/env.tmp" "$SWARM_DIR/env"
log "ready: $SWARM_DIR/env"
cat "$SWARM_DIR/env"
