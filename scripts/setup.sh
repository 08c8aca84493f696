#!/usr/bin/env bash
# Installs everything hashsieve needs to build and test, from Debian packages.
# Safe to run again. Needs root (or sudo).
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
packages=(
  # toolchain
  build-essential cmake ninja-build pkg-config python3 clang-14 libclang-rt-14-dev
  # libraries hashsieve links
  libssl-dev zlib1g-dev libfuzzy-dev nlohmann-json3-dev libarchive-dev libsqlite3-dev
  libcurl4-openssl-dev libzstd-dev
  # hashsieve serve: the HTTP server (cpp-httplib) and the YAML config
  libcpp-httplib-dev libyaml-cpp-dev
  # ISA-L's igzip: the layer reader's gzip inflate (docs/adr/0011)
  libisal-dev
  # third-party scanners (src/scanners): libclamav and libyara; clamd for the
  # INSTREAM integration tests, the yara CLI to cross-check rule errors
  libclamav-dev libyara-dev clamav-daemon yara
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # reference tools the tests compare against (Debian's TLSH 3.4.4 and ssdeep)
  libtlsh-dev tlsh-tools ssdeep
  # real servers and tools the image integration tests drive
  docker-registry skopeo umoci apache2-utils busybox-static clamav
  # the demo and bench/image_scan: registry probes, peak RSS, a Debian rootfs
  curl time debootstrap
  # the PostgreSQL store backend: libpq to build, a server (initdb/pg_ctl) and
  # pg_trgm (contrib) for its conformance and restart tests
  libpq-dev postgresql-15 postgresql-contrib
  # the openssl CLI: the registry token-auth and HTTPS tests make keys and sign JWTs with it
  openssl
  # hashsieve runtime: its integration tests and bench/runtime start a private dockerd
  docker.io
  # hashsieve runtime against Podman's Docker-compatible service (its integration test)
  podman
  # the RabbitMQ queue backend (librabbitmq) and the broker its integration tests start
  librabbitmq-dev rabbitmq-server
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: all packages present"
