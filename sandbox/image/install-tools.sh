#!/usr/bin/env bash
# The container tools `make image` uses, from Debian's packages: podman (with buildah's build
# engine), runc, mmdebstrap (the stand-in base image), uidmap and fuse-overlayfs.
# Idempotent: installs only what is missing; needs root (or sudo) for apt-get.
# Debian's containernetworking-plugins/netavark come with podman; ca-certificates for mmdebstrap's
# HTTPS mirrors, if any.
set -euo pipefail

exec "$(dirname "$0")/../lib/apt-install-missing.sh" "image tools" "ca-certificates" -- \
  podman=podman buildah=buildah runc=runc mmdebstrap=mmdebstrap newuidmap=uidmap \
  fuse-overlayfs=fuse-overlayfs
