#!/usr/bin/env bash
# Installs the system packages bildwerk uses: Noto fonts (Latin, Cyrillic, Greek, Arabic,
# Hebrew, CJK), FriBiDi for right-to-left text, and the independent decoders/readers the
# tests check outputs with. Skips what is already there; needs root (or sudo) and apt.
set -euo pipefail

want_test=0
[ "${1:-}" = "--test" ] && want_test=1

pkgs=()
# grep reads all of fc-list: with -q it would stop early and pipefail would see SIGPIPE
have_font() { fc-list 2>/dev/null | grep -i "$1" >/dev/null; }
have_font "Noto Sans Arabic" || pkgs+=(fonts-noto-core)
have_font "Noto Sans CJK" || pkgs+=(fonts-noto-cjk)
ldconfig -p 2>/dev/null | grep libfribidi >/dev/null || pkgs+=(libfribidi0)
if [ "$want_test" = 1 ]; then
  command -v exiftool >/dev/null || pkgs+=(libimage-exiftool-perl)
  command -v avifdec >/dev/null || pkgs+=(libavif-bin)
  command -v dwebp >/dev/null || pkgs+=(webp)
  command -v djpeg >/dev/null || pkgs+=(libjpeg-turbo-progs)
  command -v chromium >/dev/null || pkgs+=(chromium)
fi

# npm test tools pinned in package.json/package-lock.json (axe-core, vnu-jar, lighthouse),
# into ./node_modules (gitignored); only when the lock changed since the last install
if [ "$want_test" = 1 ] && command -v npm >/dev/null; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  if ! cmp -s "$root/package-lock.json" "$root/node_modules/.package-lock.json.installed"; then
    (cd "$root" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
      && cp package-lock.json node_modules/.package-lock.json.installed)
  fi
fi
command -v java >/dev/null || [ "$want_test" = 0 ] || pkgs+=(default-jre-headless)

[ ${#pkgs[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null; then
  echo "bildwerk: please install: ${pkgs[*]} (or their equivalents for your system)" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  if sudo -n true 2>/dev/null; then SUDO="sudo -n"; else
    echo "bildwerk: not root; please run: sudo apt-get install ${pkgs[*]}" >&2
    exit 0
  fi
fi
echo "bildwerk: installing system packages: ${pkgs[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${pkgs[@]}" >/dev/null
