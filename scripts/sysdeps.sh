#!/bin/sh
# System packages some tests and features need, installed with apt only when missing and
# only when we are root (as CI is); otherwise one line says how, and the tests that need
# the tool skip with the same reason.
#   usage: sysdeps.sh COMMAND:PACKAGE:WHAT ...
# SYSDEPS_DRY_RUN=1 prints the apt-get command instead of running it (tests/test_sysdeps.py).
# WHAT may hold spaces, so the missing ones are kept one per line and read back with a
# newline-only IFS (a space-split list once turned "run --gdb" into apt-get arguments).
nl='
'
missing=""
pkgs=""
for spec in "$@"; do
    cmd=${spec%%:*}; rest=${spec#*:}; pkg=${rest%%:*}; what=${rest#*:}
    if ! command -v "$cmd" >/dev/null 2>&1; then
        missing="$missing$pkg:$what$nl"
        pkgs="$pkgs $pkg"
    fi
done
[ -z "$pkgs" ] && exit 0
if [ -n "$SYSDEPS_DRY_RUN" ]; then
    echo "apt-get install -y -q$pkgs"
    exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages:$pkgs (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y -q $pkgs >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $pkgs >/dev/null 2>&1; } \
        || echo "setup: could not install$pkgs with apt-get; the tests that need them will skip"
else
    IFS=$nl
    for m in $missing; do
        [ -n "$m" ] && echo "setup: ${m%%:*} is missing (needed for ${m#*:}); install it with 'sudo apt-get install ${m%%:*}'; those tests skip until then"
    done
fi
exit 0
