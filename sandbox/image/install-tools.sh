#!/usr/bin/env bash
# The container tools `make image` uses, from Debian's packages: podman (with buildah's build
# engine), runc, mmdebstrap (the stand-in base image), uidmap and fuse-overlayfs.
# Idempotent: installs only what is missing; needs root (or sudo) for apt-get.
set -euo pipefail

declare -A provides=(
  [podman]=podman [buildah]=buildah [runc]=runc [mmdebstrap]=mmdebstrap
  [newuidmap]=uidmap [fuse-overlayfs]=fuse-overlayfs
)
missing=()
for cmd in "${!provides[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${provides[$cmd]}")
done
# Debian's containernetworking-plugins/netavark come with podman; ca-certificates for mmdebstrap's
# HTTPS mirrors, if any.
if ((${#missing[@]} == 0)); then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "image tools missing (${missing[*]}) and no apt-get to install them" >&2
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
  "${missing[@]}" ca-certificates >/dev/null
