#!/bin/sh
# System packages some tests and features need, installed with apt only when missing and
# only when we are root (as CI is); otherwise one line says how, and the tests that need
# the tool skip with the same reason.
#   usage: sysdeps.sh COMMAND:PACKAGE:WHAT ...
missing=""
for spec in "$@"; do
    cmd=${spec%%:*}; rest=${spec#*:}; pkg=${rest%%:*}; what=${rest#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg:$what"
done
[ -z "$missing" ] && exit 0
pkgs=$(for m in $missing; do printf '%s ' "${m%%:*}"; done)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing system packages:$pkgs(apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    # shellcheck disable=SC2086
    apt-get install -y -q $pkgs >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null 2>&1 && apt-get install -y -q $pkgs >/dev/null 2>&1; } \
        || echo "setup: could not install$pkgs with apt-get; the tests that need them will skip"
else
    for m in $missing; do
        echo "setup: ${m%%:*} is missing (needed for ${m#*:}); install it with 'sudo apt-get install ${m%%:*}'; those tests skip until then"
    done
fi
exit 0
