#!/usr/bin/env bash
#
# Builds the nginx dynamic module against Debian's nginx sources:
#
#   tools/build-module.sh            -> build/nginx-src/objs/ngx_http_xregion_module.so
#
# The sources (package nginx-dev, /usr/share/nginx/src, or $NGINX_SRC) are
# copied once to build/nginx-src and reused.  configure runs again only when
# module/config or the list of sources changed; make then rebuilds what
# changed.  Output is quiet unless something fails; the exit status is
# non-zero on any failure.
#
#   JOBS=4 tools/build-module.sh     parallel make (default 2)
#   VERBOSE=1 tools/build-module.sh  show configure and make output
#
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
src=${NGINX_SRC:-/usr/share/nginx/src}
out=$repo/build/nginx-src
jobs=${JOBS:-2}
so=$out/objs/ngx_http_xregion_module.so
log=$repo/build/nginx-module.log

if [ ! -x "$src/configure" ]; then
    echo "build-module: $src/configure not found (install nginx-dev)" >&2
    exit 1
fi

mkdir -p "$repo/build"

if [ ! -x "$out/configure" ]; then
    rm -rf "$out.tmp"
    cp -a "$src" "$out.tmp"
    mv "$out.tmp" "$out"
fi

run() {
    if [ -n "${VERBOSE:-}" ]; then
        "$@"
    elif ! "$@" >>"$log" 2>&1; then
        echo "build-module: failed: $*" >&2
        tail -n 40 "$log" >&2
        return 1
    fi
}

: >"$log"

# configure again when the module's file list could have changed
stamp=$( { cat "$repo/module/config" "$0";
           ls "$repo"/module/*.c "$repo"/core/*.[ch] "$repo"/adapters/*.[ch]; } \
         | md5sum | cut -d' ' -f1 )

cd "$out"

if [ ! -f objs/Makefile ] || [ "$(cat objs/.xregion-stamp 2>/dev/null)" != "$stamp" ]
then
    # Build as Debian builds its nginx (nginx -V): -O2 and the hardening
    # flags; nginx's own default would be -O, about a third slower here.
    # --with-threads as Debian's nginx has it: the audit log syncs in
    # nginx's thread pool
    run ./configure --with-compat --with-threads \
        --add-dynamic-module="$repo/module" \
        --with-cc-opt="-g -O2 -fstack-protector-strong -Wformat \
-Werror=format-security -fPIC -D_FORTIFY_SOURCE=2"

    # The module's own files build with nginx's -Werror.  core/ and
    # adapters/ are the library's, written and tested under CMake's -Wall
    # -Wextra: here their warnings (gcc at -O guesses more) are shown below
    # but do not stop the gateway from building.
    cat >>objs/Makefile <<'EOF'

objs/addon/core/%.o objs/addon/adapters/%.o: CFLAGS += -Wno-error
EOF

    echo "$stamp" > objs/.xregion-stamp
fi

run make -f objs/Makefile -j"$jobs" modules

# warnings in core/ and adapters/ (see above): shown, not hidden
if grep -q 'warning:' "$log"; then
    echo "build-module: compiler warnings:" >&2
    grep -A3 'warning:' "$log" >&2 || true
fi

if [ ! -f "$so" ]; then
    echo "build-module: $so was not produced" >&2
    exit 1
fi

echo "build-module: $so"
