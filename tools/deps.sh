#!/bin/sh
# Installs the Debian packages tcplb needs to build and test, and only those
# that are missing: a library counts as present when pkg-config (or, for
# libev and http-parser, which ship no .pc file on Debian, its header) finds
# it; a tool when `command -v` finds it. apt-get update runs at most once.
set -eu

missing=""
want_pkg() { missing="$missing $1"; }

command -v pkg-config >/dev/null 2>&1 || want_pkg pkg-config
command -v gcc >/dev/null 2>&1 || want_pkg gcc
command -v make >/dev/null 2>&1 || want_pkg make
command -v python3 >/dev/null 2>&1 || want_pkg python3
command -v curl >/dev/null 2>&1 || want_pkg curl
if ! pkg-config --exists libev 2>/dev/null && [ ! -f /usr/include/ev.h ]; then
    want_pkg libev-dev
fi
pkg-config --exists inih 2>/dev/null || want_pkg libinih-dev
# the HTTP/1 parser of mode = http's request observer (no .pc file on Debian)
if ! pkg-config --exists http-parser 2>/dev/null && [ ! -f /usr/include/http_parser.h ]; then
    want_pkg libhttp-parser-dev
fi
# c-ares, the asynchronous DNS resolver of `discover`
pkg-config --exists libcares 2>/dev/null || want_pkg libc-ares-dev
# liburing, the io_uring data path (io = io_uring)
pkg-config --exists liburing 2>/dev/null || want_pkg liburing-dev
if [ "${1:-}" = "test" ]; then
    pkg-config --exists cmocka 2>/dev/null || want_pkg libcmocka-dev
    # tests/integration/test_page.py renders the stats page in it
    command -v chromium >/dev/null 2>&1 || want_pkg chromium
    # tests/integration/test_lab.py and `make lab` run real nginx + php-fpm
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || want_pkg nginx
    command -v php-fpm8.2 >/dev/null 2>&1 || ls /usr/sbin/php-fpm* >/dev/null 2>&1 ||
        want_pkg php-fpm
    # tests/integration/test_discover.py serves the records it changes
    command -v dnsmasq >/dev/null 2>&1 || [ -x /usr/sbin/dnsmasq ] || want_pkg dnsmasq-base
    # tests/integration/test_keepalived.py: two instances behind a VRRP address
    command -v keepalived >/dev/null 2>&1 || [ -x /usr/sbin/keepalived ] || want_pkg keepalived
    command -v ip >/dev/null 2>&1 || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || want_pkg iproute2
    # tests/integration/test_man.py lints man/ with both formatters
    command -v mandoc >/dev/null 2>&1 || want_pkg mandoc
    command -v groff >/dev/null 2>&1 || want_pkg groff-base
    # `make deb` and tests/integration/test_install.py build the Debian package
    command -v dpkg-buildpackage >/dev/null 2>&1 || want_pkg dpkg-dev
    command -v dh >/dev/null 2>&1 || want_pkg debhelper
    command -v fakeroot >/dev/null 2>&1 || want_pkg fakeroot
    command -v lintian >/dev/null 2>&1 || want_pkg lintian
    # tests/integration/test_install.py: logrotate -d parses the shipped file
    command -v logrotate >/dev/null 2>&1 || [ -x /usr/sbin/logrotate ] || want_pkg logrotate
fi

[ -z "$missing" ] && exit 0

echo "deps: installing$missing" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing
