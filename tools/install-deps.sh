#!/usr/bin/env bash
#
# Installs the Debian 12 packages xregion needs to build, test and demo,
# and only those that are missing.  This list is the one place they are
# named; README.md explains each.
#
#   tools/install-deps.sh          install what is missing (as root)
#   tools/install-deps.sh --list   print the list, one package a line
#
set -euo pipefail

PACKAGES=(
    build-essential     # gcc, make, libc headers
    cmake               # builds the core library, the tool, the tests
    pkg-config          # finds jansson, libxml2, OpenSSL, cmocka
    clang               # sanitizer and libFuzzer builds
    libclang-rt-14-dev  # clang's ASan/UBSan/libFuzzer runtimes
    nginx               # the server that loads the module
    nginx-dev           # nginx sources/headers to build the module
    libssl-dev          # audit hashes and signatures (SM2/SM3, ECDSA)
    libxml2-dev         # the XML codec
    libhiredis-dev      # the module's async Redis client
    libjansson-dev      # the JSON codec
    libcmocka-dev       # unit tests
    redis-server        # shared state for the end-to-end tests
    python3-pytest      # end-to-end tests
    wrk                 # benchmarks
    libnginx-mod-http-ndk  # bench peers only: the Lua module needs it
    libnginx-mod-http-lua  # bench peers only: the Lua peer
    lua-cjson           # bench peers only: the Lua peer's JSON decoder
    libnginx-mod-http-js   # bench peers only: the njs peer
    valgrind            # leak checks of the command-line tool
    openssl             # test certificates and keys
    curl                # end-to-end tests and the demo
    xxd                 # the demo's hex dumps of fixed-width records
)

if [ "${1:-}" = "--list" ]; then
    printf '%s\n' "${PACKAGES[@]}"
    exit 0
fi

missing=()
for pkg in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null \
            | grep -q 'install ok installed'; then
        missing+=("$pkg")
    fi
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "deps: all ${#PACKAGES[@]} packages are installed"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: ${missing[*]}" >&2
    echo "deps: as root, run: apt-get install ${missing[*]}" >&2
    exit 1
fi

echo "deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"
