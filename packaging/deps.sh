#!/bin/sh
# Install the Debian packages splitprof needs to build, test and run.
# Idempotent: when everything is installed it only asks dpkg and exits.
set -eu

PKGS="make gcc clang llvm bpftool pkg-config
libbpf-dev libelf-dev zlib1g-dev liburing-dev libseccomp-dev
libprotobuf-c-dev protobuf-c-compiler libcurl4-openssl-dev libyaml-dev
libpcre2-dev libstdc++-12-dev libcriterion-dev golang-go openssl iproute2
procps"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
	case "$st" in
	ii*) ;;
	*) missing="$missing $p" ;;
	esac
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing" >&2
	echo "deps: run as root (or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing
