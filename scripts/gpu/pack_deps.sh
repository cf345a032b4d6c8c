#!/usr/bin/env bash
# Run HERE (Debian 12), before check_model.sh runs on the GPU machine: copies the C++ dependencies
# that libs/model's standalone build needs and the GPU image lacks (Abseil, GoogleTest/GoogleMock,
# nlohmann_json: headers, libraries, CMake configs) into build/gpu-deps/usr, a relocatable prefix.
# Pass build/gpu-deps in the device call's `carry`. (~30 MB; build/ is git-ignored.)
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=build/gpu-deps
rm -rf "$dest"
mkdir -p "$dest"
for pkg in libabsl-dev libabsl20220623 libgtest-dev libgmock-dev nlohmann-json3-dev; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || {
    echo "pack_deps: $pkg is not installed (run ./scripts/setup.sh)" >&2; exit 1; }
  dpkg -L "$pkg" | while read -r f; do
    case "$f" in /usr/share/doc*|/usr/share/lintian*|/usr/src*) continue ;; esac
    if [ -f "$f" ] || [ -L "$f" ]; then
      mkdir -p "$dest$(dirname "$f")"
      cp -a "$f" "$dest$f"
    fi
  done
done
du -sh "$dest"
