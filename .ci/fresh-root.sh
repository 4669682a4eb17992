#!/usr/bin/env bash
# The README's two commands on a brand-new machine: a minimal Debian bookworm root (debootstrap minbase plus
# python3 python3-venv python3-pip make git ca-certificates sudo: no compiler, no binutils, no audio, no Qt,
# no display) gets a clean clone of the committed tree and runs, as root, with an empty environment:
#   1. `make test`  (installs everything it needs, builds the bundle, runs the whole suite), then
#      `make conformance` (third-party servers and real-encoder files; installs what it needs itself)
#   2. `make run`   (must log "voicegui ready" and "built-in voices ready", then stay up; no traceback)
# A package missing from the Makefile makes one of them fail, and so this script and CI.
#
# Cached under $CI_CACHE (default /var/cache/voicegui-ci): the packed base root (rebuilt when the base
# definition below changes) and the downloaded .deb and pip archives, which save download time only: apt and
# pip inside the root still have to be told to install every package. Needs root (chroot, mounts).
#   CI_KEEP=1 keeps the root for a look;  CI_NO_DOWNLOAD_CACHE=1 downloads everything again.
set -euo pipefail
cd "$(dirname "$0")/.."
PROJECT=$(pwd)
CI_CACHE=${CI_CACHE:-/var/cache/voicegui-ci}
TEST_TIMEOUT=${CI_TEST_TIMEOUT:-3000}  # s; make test takes ~10-12 min on 2 cores (bundle build + two test phases)
CONFORMANCE_TIMEOUT=${CI_CONFORMANCE_TIMEOUT:-1500}  # s; make conformance: installs ~5 min, suite ~7 min
RUN_READY_TIMEOUT=${CI_RUN_READY_TIMEOUT:-600}  # s for make run to install and show the window
RUN_STAY_UP=${CI_RUN_STAY_UP:-20}  # s the window must stay up after the built-in voices are ready
BASE_PACKAGES="python3 python3-venv python3-pip make git ca-certificates sudo"
ROOT_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "==> ci: $*"; }
die() { echo "ci: FAIL: $*" >&2; exit 1; }
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts); run it as root or in a root container"

host_tools() {
  local missing=""
  command -v debootstrap >/dev/null || missing="$missing debootstrap"
  command -v zstd >/dev/null || missing="$missing zstd"
  if [ -n "$missing" ]; then
    say "installing on this machine:$missing"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
  fi
}

# --- mounts: the API file systems, with a private /dev so nothing inside touches the host's ---------------
mount_api() {
  local r=$1 n name maj min
  mount -t proc -o nosuid,nodev,noexec proc "$r/proc"
  mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$r/sys"
  mount -t tmpfs -o nosuid,mode=0755,size=64m dev "$r/dev"
  for n in null:1:3 zero:1:5 full:1:7 random:1:8 urandom:1:9 tty:5:0; do
    IFS=: read -r name maj min <<<"$n"
    mknod -m 666 "$r/dev/$name" c "$maj" "$min"
  done
  ln -s /proc/self/fd "$r/dev/fd"
  ln -s fd/0 "$r/dev/stdin"; ln -s fd/1 "$r/dev/stdout"; ln -s fd/2 "$r/dev/stderr"
  ln -s pts/ptmx "$r/dev/ptmx"
  mkdir -p "$r/dev/pts" "$r/dev/shm"
  mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$r/dev/pts"
  mount -t tmpfs -o nosuid,nodev,mode=1777 shm "$r/dev/shm"
}

mounts_under() {  # deepest first
  awk -v r="$1" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}

pids_inside() {  # processes whose root directory is $1
  local p root
  for p in /proc/[0-9]*; do
    root=$(readlink "$p/root" 2>/dev/null) || continue
    case $root in "$1" | "$1"/*) echo "${p#/proc/}" ;; esac
  done
}

# Stop everything still running inside (the suite's PulseAudio, a window), then unmount.
stop_and_unmount() {
  local r=$1 pids m i
  pids=$(pids_inside "$r")
  if [ -n "$pids" ]; then
    kill -TERM $pids 2>/dev/null || true; sleep 2
    pids=$(pids_inside "$r"); [ -z "$pids" ] || { kill -KILL $pids 2>/dev/null || true; sleep 1; }
  fi
  for i in 1 2 3 4 5; do
    for m in $(mounts_under "$r"); do umount "$m" 2>/dev/null || true; done
    [ -z "$(mounts_under "$r")" ] && break
    sleep 1
  done
  for m in $(mounts_under "$r"); do umount -l "$m" || true; done
  [ -z "$(mounts_under "$r")" ]
}

# Unmount and delete root $1; never deletes while something is still mounted there.
teardown() {
  local r=$1
  [ -n "$r" ] && [ -d "$r" ] || return 0
  stop_and_unmount "$r" || { echo "ci: mounts left under $r; not deleting it" >&2; return 1; }
  if [ -n "${CI_KEEP:-}" ]; then echo "ci: kept the root $r" >&2; return 0; fi
  rm -rf --one-file-system "$r"
}

# Where this machine's TLS is re-signed by a local CA, the root must trust it too, or pip cannot reach PyPI.
trust_host_cas() {
  local r=$1
  mkdir -p "$r/usr/local/share/ca-certificates"
  if compgen -G '/usr/local/share/ca-certificates/*.crt' >/dev/null; then
    cp /usr/local/share/ca-certificates/*.crt "$r/usr/local/share/ca-certificates/"
    printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$r/etc/pip.conf"
  fi
  chroot "$r" /usr/sbin/update-ca-certificates --fresh >/dev/null 2>&1
}

# --- the base root: built once per definition, packed -----------------------------------------------------
base_key=$(printf '%s\n' "bookworm minbase v1" "$BASE_PACKAGES" | sha256sum | cut -c1-12)
BASE=$CI_CACHE/base-$base_key.tar.zst

build_base() {
  local r log=$CI_CACHE/base-build.log mirror f t0=$SECONDS
  r=$(mktemp -d "$CI_CACHE/base-build.XXXXXX"); chmod 755 "$r"
  say "building the base root once (debootstrap bookworm minbase + $BASE_PACKAGES; log $log)"
  mirror=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  mirror=${mirror:-http://deb.debian.org/debian}
  if ! debootstrap --variant=minbase bookworm "$r" "$mirror" >"$log" 2>&1; then
    tail -n 20 "$log"; teardown "$r"; die "debootstrap failed"
  fi
  # Same apt sources as this machine (updates, security); a snapshot mirror needs its validity settings.
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    rm -f "$r/etc/apt/sources.list"; cp /etc/apt/sources.list.d/debian.sources "$r/etc/apt/sources.list.d/"
  fi
  for f in $(grep -l -E 'Check-Valid-Until|Check-Date' /etc/apt/apt.conf.d/* 2>/dev/null || true); do
    cp "$f" "$r/etc/apt/apt.conf.d/"
  done
  # As in any container: installing a package must not start its daemon.
  printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"; chmod 755 "$r/usr/sbin/policy-rc.d"
  printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"
  cp /etc/resolv.conf "$r/etc/resolv.conf"
  mount_api "$r"
  local in=(chroot "$r" /usr/bin/env -i HOME=/root "PATH=$ROOT_PATH" DEBIAN_FRONTEND=noninteractive)
  if ! { "${in[@]}" apt-get update && "${in[@]}" apt-get install -y --no-install-recommends $BASE_PACKAGES \
      && "${in[@]}" apt-get upgrade -y; } >>"$log" 2>&1; then
    tail -n 20 "$log"; teardown "$r"; die "apt inside the base root failed"
  fi
  # Like a new image: no package lists or caches (the Makefile must run apt-get update itself).
  "${in[@]}" apt-get clean >>"$log" 2>&1
  stop_and_unmount "$r" || die "mounts left under $r"
  rm -rf "$r"/var/lib/apt/lists/* "$r"/root/.cache "$r"/tmp/* "$r"/var/log/apt/*
  tar -C "$r" --numeric-owner -cf - . | zstd -q -T0 -3 -o "$BASE.tmp" -f
  mv -f "$BASE.tmp" "$BASE"
  rm -rf --one-file-system "$r"
  say "base root built in $((SECONDS - t0)) s ($(du -h "$BASE" | cut -f1))"
}

# --- make run: the window comes up, the default voice gets ready, and it stays up ---------------------------
check_run() {
  local r=$1 log=$CI_CACHE/last-run.log pid t0=$SECONDS ready_at=""
  say "make run in the fresh root (log $log)"
  # No DISPLAY: the Makefile starts the window on a virtual X screen (xvfb-run), as for a headless user.
  setsid chroot "$r" /usr/bin/env -i HOME=/root "PATH=$ROOT_PATH" TERM=dumb \
    sh -c 'cd /root/project && exec make run' </dev/null >"$log" 2>&1 &
  pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    if [ -z "$ready_at" ] && grep -q "built-in voices ready" "$log" && grep -q "voicegui ready" "$log"; then
      ready_at=$SECONDS; say "make run: window and built-in voices ready after $((SECONDS - t0)) s"
    fi
    [ -n "$ready_at" ] && [ $((SECONDS - ready_at)) -ge "$RUN_STAY_UP" ] && break
    [ $((SECONDS - t0)) -ge "$RUN_READY_TIMEOUT" ] && break
    sleep 1
  done
  local alive=0; kill -0 "$pid" 2>/dev/null && alive=1
  kill -TERM -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  if grep -q 'Traceback (most recent call last)' "$log"; then
    tail -n 30 "$log"; echo "ci: FAIL: make run printed a traceback"; return 1
  fi
  if [ -z "$ready_at" ]; then
    tail -n 30 "$log"; echo "ci: FAIL: make run never logged both 'voicegui ready' and 'built-in voices ready'"
    return 1
  fi
  if [ $alive -ne 1 ]; then
    tail -n 30 "$log"; echo "ci: FAIL: make run exited within ${RUN_STAY_UP} s of being ready"; return 1
  fi
  say "make run: PASS (still up ${RUN_STAY_UP} s after the voices were ready)"
}

# --- main ---------------------------------------------------------------------------------------------------
mkdir -p "$CI_CACHE"
host_tools
exec 9>"$CI_CACHE/.lock"; flock 9  # one fresh-root run at a time on this machine
[ -s "$BASE" ] || build_base

T0=$SECONDS
ROOT=$(mktemp -d "$CI_CACHE/root.XXXXXX"); chmod 755 "$ROOT"
trap 'teardown "$ROOT" || true' EXIT
trap 'exit 130' INT TERM HUP
tar --zstd -xpf "$BASE" -C "$ROOT" --numeric-owner
cp /etc/resolv.conf "$ROOT/etc/resolv.conf"
trust_host_cas "$ROOT"
# Committed files only: what a new user gets from `git clone`.
git -c safe.directory='*' clone -q --no-hardlinks "$PROJECT" "$ROOT/root/project"
[ -z "$(git -C "$PROJECT" status --porcelain 2>/dev/null)" ] \
  || echo "ci: note: uncommitted changes in $PROJECT are not part of this check" >&2
say "fresh root for $(git -C "$ROOT/root/project" log -1 --format='%h %s')"
mount_api "$ROOT"
if [ -z "${CI_NO_DOWNLOAD_CACHE:-}" ]; then
  mkdir -p "$CI_CACHE/apt-archives/partial" "$CI_CACHE/pip" "$ROOT/var/cache/apt/archives" "$ROOT/root/.cache/pip"
  mount --bind "$CI_CACHE/apt-archives" "$ROOT/var/cache/apt/archives"
  mount --bind "$CI_CACHE/pip" "$ROOT/root/.cache/pip"
fi

say "make test in the fresh root (this is what a new user runs; its output follows)"
rc=0
timeout -k 10 "$TEST_TIMEOUT" setsid chroot "$ROOT" /usr/bin/env -i HOME=/root "PATH=$ROOT_PATH" TERM=dumb \
  sh -c 'cd /root/project && make test' </dev/null 2>&1 | tee "$CI_CACHE/last-test.log" || rc=$?
[ $rc -eq 0 ] || die "make test failed in the fresh root (exit $rc; log $CI_CACHE/last-test.log)"
say "make test: PASS after $((SECONDS - T0)) s"

# The conformance suite: installs the encoders and the third-party servers' virtualenvs itself, then plays
# every server x format and every real-encoder file (tests/conformance).
T1=$SECONDS
say "make conformance in the fresh root"
rc=0
timeout -k 10 "$CONFORMANCE_TIMEOUT" setsid chroot "$ROOT" /usr/bin/env -i HOME=/root "PATH=$ROOT_PATH" TERM=dumb \
  sh -c 'cd /root/project && make conformance' </dev/null 2>&1 | tee "$CI_CACHE/last-conformance.log" || rc=$?
[ $rc -eq 0 ] || die "make conformance failed in the fresh root (exit $rc; log $CI_CACHE/last-conformance.log)"
say "make conformance: PASS after $((SECONDS - T1)) s"

check_run "$ROOT" || exit 1
say "fresh root: make test and make run passed in $((SECONDS - T0)) s"
# The suite's closing line last, for whoever reads only the end of the log.
grep -E '^=+ .*(passed|failed).* in [0-9.]+s' "$CI_CACHE/last-test.log" | tail -n 1
