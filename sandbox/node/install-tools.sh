#!/usr/bin/env bash
# What the sandbox's node (`make sandbox NODE=1`) runs besides the kubelet, from Debian's packages:
# containerd (with ctr), runc and the CNI plugins (bridge, host-local, loopback); gcc builds the
# pause image's one static binary. Idempotent: installs only what is missing; needs root (or sudo)
# for apt-get. Debian's containerd package starts no service where systemd is not PID 1, and the
# node runs its own containerd anyway (its own socket and directories under .sandbox/node).
set -euo pipefail

exec "$(dirname "$0")/../lib/apt-install-missing.sh" "node tools" "" -- \
  containerd=containerd ctr=containerd runc=runc gcc=gcc ip=iproute2 \
  /usr/lib/cni/bridge=containernetworking-plugins
