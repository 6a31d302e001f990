#!/usr/bin/env bash
# Install the system packages the tests use (LibreOffice, CJK fonts, Chromium, Firefox ESR, WebKitGTK's
# WebDriver with Xvfb for its MiniBrowser, nginx, poppler),
# where this machine allows it. Tests that need a missing one skip with a message, except under CI=true.
set -uo pipefail
pkgs=(chromium chromium-driver firefox-esr webkit2gtk-driver xvfb libreoffice-writer-nogui libreoffice-impress-nogui libreoffice-calc-nogui
      fonts-noto-cjk nginx poppler-utils)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq "${missing[@]}" >/dev/null || echo "could not install some of: ${missing[*]}" >&2
else
  echo "not installed (tests that need them will skip): ${missing[*]}" >&2
  echo "install with: sudo apt-get install ${missing[*]}" >&2
fi
exit 0
