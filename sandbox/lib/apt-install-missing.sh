#!/usr/bin/env bash
# Shared by sandbox/*/install-tools.sh: install the Debian packages that provide the commands
# (or files, given as absolute paths) that are missing. Idempotent; needs root (or sudo).
#
#   apt-install-missing.sh WHAT EXTRA_PACKAGES -- COMMAND=PACKAGE ...
#
# WHAT names the tools in messages ("image tools"); EXTRA_PACKAGES (space-separated, may be "")
# are installed along with anything missing, never on their own.
set -euo pipefail

what=$1 extra=$2
shift 2
[[ ${1:-} == -- ]] && shift
missing=()
for pair in "$@"; do
  cmd=${pair%%=*} package=${pair#*=}
  if [[ $cmd == /* ]]; then
    [[ -x $cmd ]] || missing+=("$package")
  else
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$package")
  fi
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
if ! command -v apt-get >/dev/null 2>&1; then
  echo "$what missing (${missing[*]}) and no apt-get to install them" >&2
  exit 1
fi
sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null 2>&1 || { echo "installing ${missing[*]} needs root" >&2; exit 1; }
  sudo=(sudo)
fi
read -r -a extras <<<"$extra"
echo ">> installing ${missing[*]} (apt-get)"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
  "${missing[@]}" "${extras[@]}" >/dev/null
