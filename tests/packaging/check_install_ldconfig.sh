#!/bin/sh
# `make install` / `make uninstall` run ldconfig on a live install (no
# DESTDIR), as libtool and CMake-installed libraries do, so that `sudo make
# install` gives a library the loader finds; never under DESTDIR (a staging
# tree). ldconfig is replaced by a recorder (LDCONFIG=) so that the test never
# touches the real loader cache; the "live" prefix is a temporary folder.
set -eu
B=${B:-build}
MAKE=${MAKE:-make}
SANITIZE=${SANITIZE:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '#!/bin/sh\necho "ldconfig $*" >> %s/calls\n' "$tmp" > "$tmp/ldconfig"
chmod +x "$tmp/ldconfig"
run() {
    "$MAKE" --no-print-directory -s B="$B" SANITIZE="$SANITIZE" LDCONFIG="$tmp/ldconfig" "$@" >"$tmp/log" 2>&1 ||
        { cat "$tmp/log"; echo "check_install_ldconfig: FAIL (make $*)"; exit 1; }
}
calls() { if [ -f "$tmp/calls" ]; then wc -l < "$tmp/calls"; else echo 0; fi; }

run PREFIX="$tmp/live" install
[ "$(calls)" -eq 1 ] || { echo "check_install_ldconfig: FAIL (live install ran ldconfig $(calls) times)"; exit 1; }
soname=libhmt.so.$(awk '/^#define HMT_ABI_VERSION / {print $3}' include/hmt/version.h)
[ -f "$tmp/live/lib/$soname" ] || { echo "check_install_ldconfig: FAIL (nothing installed)"; exit 1; }
run PREFIX="$tmp/live" uninstall
[ "$(calls)" -eq 2 ] || { echo "check_install_ldconfig: FAIL (live uninstall did not run ldconfig)"; exit 1; }

run DESTDIR="$tmp/stage" PREFIX=/usr/local install
run DESTDIR="$tmp/stage" PREFIX=/usr/local uninstall
[ "$(calls)" -eq 2 ] || { echo "check_install_ldconfig: FAIL (ldconfig ran under DESTDIR)"; exit 1; }

# a failing ldconfig (not root) does not fail the install
printf '#!/bin/sh\nexit 1\n' > "$tmp/ldconfig"
run PREFIX="$tmp/live" install
grep -q "could not run" "$tmp/log" || { echo "check_install_ldconfig: FAIL (no note when ldconfig fails)"; exit 1; }
echo "check_install_ldconfig: OK (ldconfig on live install and uninstall, not under DESTDIR)"
