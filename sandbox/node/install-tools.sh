#!/usr/bin/env bash
# What the sandbox's node (`make sandbox NODE=1`) runs besides the kubelet, from Debian's packages:
# containerd (with ctr), runc and the CNI plugins (bridge, host-local, loopback); gcc builds the
# pause image's one static binary. Idempotent: installs only what is missing; needs root (or sudo)
# for apt-get. Debian's containerd package starts no service where systemd is not PID 1, and the
# node runs its own containerd anyway (its own socket and directories under .sandbox/node).
set -euo pipefail

declare -A provides=(
  [containerd]=containerd [ctr]=containerd [runc]=runc [gcc]=gcc [ip]=iproute2
  [/usr/lib/cni/bridge]=containernetworking-plugins
)
missing=()
for cmd in "${!provides[@]}"; do
  if [[ $cmd == /* ]]; then
    [[ -x $cmd ]] || missing+=("${provides[$cmd]}")
  else
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${provides[$cmd]}")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if ! command -v apt-get >/dev/null 2>&1; then
  echo "node tools missing (${missing[*]}) and no apt-get to install them" >&2
  exit 1
fi
sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null 2>&1 || { echo "installing ${missing[*]} needs root" >&2; exit 1; }
  sudo=(sudo)
fi
echo ">> installing ${missing[*]} (apt-get)"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" >/dev/null
