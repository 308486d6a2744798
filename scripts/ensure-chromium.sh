#!/usr/bin/env bash
# The browser tests drive Debian's `chromium` through Playwright (no browser download):
# install the package where it is missing. CHROMIUM_PATH overrides where the tests look.
set -euo pipefail

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "ensure-chromium: $CHROMIUM is missing and apt-get is not available; install Chromium" \
    "and set CHROMIUM_PATH" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "ensure-chromium: installing Debian's chromium package"
# Other apt users on the machine hold the dpkg lock for a while: wait for it, not fail.
$SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
  --no-install-recommends chromium fonts-dejavu-core >/dev/null
[ -x "$CHROMIUM" ] || { echo "ensure-chromium: $CHROMIUM still missing" >&2; exit 1; }
