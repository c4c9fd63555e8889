#!/usr/bin/env bash
# Starts the Docker engines of the end-to-end suites that drive Docker:
#   - dockerd (vfs storage, no iptables, no bridge) in its own state dir and socket,
#   - swarm mode on 127.0.0.1 for it: a throwaway single-node Docker Swarm,
#   - a second dockerd in $SWARM_DIR/plain that stays a plain engine (no swarm), for Compose
#     (Debian's docker-compose 1.29): a Docker host as Compose users have one,
#   - a local registry (Debian's docker-registry) on a free loopback port,
#   - a tiny busybox image pushed there as 127.0.0.1:<port>/bb:1 (both engines pull it).
# Then writes $SWARM_DIR/env (KEY=value lines: DOCKER_HOST, PLAIN_DOCKER_HOST, REGISTRY, IMAGE, ...).
#
# Usage: scripts/swarm/up.sh        (as root; SWARM_DIR defaults to /tmp/dockercloud-swarm)
#        set -a; . "$SWARM_DIR/env"; set +a
# Stop:  scripts/swarm/down.sh
#
# Re-running it while everything is up only re-checks. SWARM_REPUSH=1 builds and pushes the
# image again (a new digest under the same tag); SWARM_IMAGE_EXTRA=text also puts that text
# in /etc/extra of the new image.
# Logs: $SWARM_DIR/logs/{apt,dockerd,plain-dockerd,registry,push}.log
set -euo pipefail

SWARM_DIR="${SWARM_DIR:-/tmp/dockercloud-swarm}"
WAIT_SECONDS="${SWARM_WAIT_SECONDS:-60}"
IMAGE_NAME="${SWARM_IMAGE_NAME:-bb:1}"

SOCK="$SWARM_DIR/docker.sock"     # the swarm engine's (data root docker/, exec root exec/)
LOGS="$SWARM_DIR/logs"
REG="$SWARM_DIR/registry"
PLAIN="$SWARM_DIR/plain"          # the plain engine's: the same layout below it
PLAIN_SOCK="$PLAIN/docker.sock"
COMPOSE_BIN="${COMPOSE_BIN:-/usr/bin/docker-compose}"

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
[ -x "$COMPOSE_BIN" ] || need+=(docker-compose)
command -v ss >/dev/null || need+=(iproute2)
command -v curl >/dev/null || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]} (log: $LOGS/apt.log)"
  t0=$SECONDS
  export DEBIAN_FRONTEND=noninteractive
  # The packages ship services (docker, containerd, docker-registry; docker-compose has none);
  # none must start: this script runs its own, in its own dirs. policy-rc.d answering 101
  # forbids starting them.
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
# start_dockerd NAME DIR LOG FLAGS...: a dockerd whose state is all under DIR (data root
# DIR/docker, exec root DIR/exec, DIR/dockerd.pid, socket DIR/docker.sock), with its own config
# file: none of the machine's /etc/docker/daemon.json, and the trust key dockerd 20.10 writes
# kept in DIR rather than in /etc/docker/key.json. Only re-checked when it already answers.
start_dockerd() {
  local name="$1" dir="$2" log="$3"; shift 3
  local host="unix://$dir/docker.sock"
  if alive "$dir/dockerd.pid" && docker -H "$host" version >/dev/null 2>&1; then
    log "$name already running (pid $(cat "$dir/dockerd.pid"))"
  else
    log "starting $name (log: $log)"
    mkdir -p "$dir/docker" "$dir/exec"
    printf '{ "deprecated-key-path": "%s" }\n' "$dir/key.json" >"$dir/daemon.json"
    # setsid: its own session, so it outlives this shell and a ^C to the caller.
    setsid dockerd \
      --data-root "$dir/docker" \
      --exec-root "$dir/exec" \
      --pidfile "$dir/dockerd.pid" \
      --config-file "$dir/daemon.json" \
      --host "$host" \
      --storage-driver vfs \
      --log-level info \
      "$@" \
      </dev/null >"$log" 2>&1 &
    echo $! >"$dir/dockerd.launch.pid"
    local t0=$SECONDS
    WATCH_PID=$(cat "$dir/dockerd.launch.pid") WATCH_LOG="$log" \
      wait_for "$WAIT_SECONDS" "$name to answer on $dir/docker.sock (see $log)" docker -H "$host" version
    log "$name up in $((SECONDS - t0))s (server $(docker -H "$host" version -f '{{.Server.Version}}'))"
  fi
  # Its managed containerd, for down.sh (it is not in dockerd's process group).
  if [ -f "$dir/exec/containerd/containerd.pid" ]; then cp "$dir/exec/containerd/containerd.pid" "$dir/containerd.pid"; fi
}

# The swarm's engine: containers with a loopback interface only (no default bridge, and no
# iptables rules: nothing of the host's firewall changes); swarm services need no more here.
start_dockerd dockerd "$SWARM_DIR" "$LOGS/dockerd.log" --iptables=false --ip6tables=false --bridge=none

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

# ---------------------------------------------------------------- plain engine
# The plain engine's bridge networks (one per Compose project, `<project>_default`, with a
# br-<id> interface and a route on the host) take /24s of one /16: 10.213.0.0/16, or the next
# one up to 10.222 when a host route lies in it or another running dockerd was given it (a
# second copy of this setup under another SWARM_DIR, say). It never meets the swarm engine's
# subnets: that engine's local pools are Docker's defaults (172.17-31.0.0/16, 192.168.0.0/16;
# docker_gwbridge takes one), and its swarm overlays (10.0.0.0/8 from 10.0.0.0/24 upwards) live
# in network namespaces of their own, with no route on the host.
pick_pool() {
  local n pool used
  used=$(for pid in $(pgrep -x dockerd); do tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null; echo; done)
  for n in $(seq 213 222); do
    pool="10.$n.0.0/16"
    if grep -qF "base=$pool," <<<"$used" || [ -n "$(ip -4 route show root "$pool")" ]; then continue; fi
    echo "$pool"
    return 0
  done
  die "no free address pool in 10.213-222.0.0/16 for the plain engine (see ip route)"
}
# The flags, as found by trying with Debian 12's dockerd 20.10 (iptables-nft, br_netfilter loaded):
# - --iptables=false: the host's firewall is left alone (with --iptables=true dockerd adds DOCKER,
#   DOCKER-USER and DOCKER-ISOLATION-* chains and jumps in the filter and nat tables, and leaves
#   them there when it stops). What Compose needs works without it:
#   * the embedded DNS (service names and network aliases, at 127.0.0.11): dockerd puts its DNAT
#     rules in each container's own network namespace whatever --iptables says
#     (`nsenter -t <pid> -n iptables -t nat -S` shows DOCKER_OUTPUT there), so one service
#     reaches another by alias;
#   * published ports: the userland proxy carries them (a docker-proxy process per port that
#     listens on the host, here on 127.0.0.1:<port>, and dials the container over the bridge),
#     hence --userland-proxy=true, said explicitly. Even with --iptables=true, a port published
#     on 127.0.0.1 is served by docker-proxy: dockerd's nat OUTPUT rule skips 127.0.0.0/8;
#   * pulls: dockerd pulls from the host's network namespace, so it reaches the loopback
#     registry; 127.0.0.0/8 is an insecure (plain HTTP) registry range by default.
#   What it costs: no masquerading, so containers reach nothing beyond the host (nothing here
#   needs to). A name the embedded DNS does not know is forwarded to the host's nameservers
#   from the container's namespace and no answer comes back: such a lookup hangs until the
#   client gives up (5 s for nslookup) instead of failing at once (NXDOMAIN with --iptables=true).
#   And two projects' networks are not isolated from each other.
# - --ip-forward=false: no host sysctl is written; same-network traffic is bridged and published
#   ports are proxied on the host, neither is forwarded.
# - --bridge=none: no default "bridge" network, whose docker0 interface has one name machine-wide
#   (another engine would own it); Compose puts services on the project's own network anyway.
# - --default-address-pool: see pick_pool.
if alive "$PLAIN/dockerd.pid" && [ -f "$PLAIN/pool" ]; then
  POOL=$(cat "$PLAIN/pool")
else
  POOL=$(pick_pool)
  mkdir -p "$PLAIN" && echo "$POOL" >"$PLAIN/pool"
fi
start_dockerd "plain dockerd" "$PLAIN" "$LOGS/plain-dockerd.log" \
  --iptables=false --ip6tables=false --ip-forward=false --bridge=none --userland-proxy=true \
  --default-address-pool "base=$POOL,size=24"
plain_docker() { docker -H "unix://$PLAIN_SOCK" "$@"; }
[ "$(plain_docker info -f '{{.Swarm.LocalNodeState}}')" = inactive ] || die "the plain engine is in a swarm"
# With br_netfilter, bridged packets also cross the host's FORWARD chain, where a DROP policy
# (set by an engine run with iptables elsewhere on the machine) can cut services apart: this
# engine adds no ACCEPT rule for its bridges.
forward=$(iptables -S FORWARD 2>/dev/null || true)
if [ "$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null)" = 1 ] && grep -qx -- '-P FORWARD DROP' <<<"$forward"; then
  log "WARNING: the host's FORWARD policy is DROP: containers of one Compose network may not reach each other"
fi
# The plain engine pulls the registry's image as a fresh host would, and drops it again: tests
# start with no image there (unless a container of an earlier run still uses it).
if [ ! -f "$PLAIN/pulled" ] || [ "$(cat "$PLAIN/pulled")" != "$IMAGE@$DIGEST" ]; then
  t0=$SECONDS
  plain_docker pull "$IMAGE" >"$LOGS/plain-pull.log" 2>&1 || { cat "$LOGS/plain-pull.log" >&2; die "the plain engine cannot pull $IMAGE"; }
  plain_docker rmi "$IMAGE" >>"$LOGS/plain-pull.log" 2>&1 || true
  echo "$IMAGE@$DIGEST" >"$PLAIN/pulled"
  log "the plain engine pulls $IMAGE ($((SECONDS - t0))s)"
fi
log "compose: $COMPOSE_BIN $("$COMPOSE_BIN" version --short 2>/dev/null || echo '(no version)')"

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
PLAIN_DOCKER_HOST=unix://$PLAIN_SOCK
PLAIN_DOCKER_SOCK=$PLAIN_SOCK
PLAIN_ADDRESS_POOL=$POOL
COMPOSE_BIN=$COMPOSE_BIN
EOF
mv "$SWARM_DIR/env.tmp" "$SWARM_DIR/env"
log "ready: $SWARM_DIR/env"
cat "$SWARM_DIR/env"
