#!/usr/bin/env bash
# Install the JavaScript the docs load, so the built site renders with no network:
# KaTeX (math) and Mermaid (graphical models), copied into docs/assets/vendor/
# (gitignored). Fetched with `npm pack` from the npm registry: one tarball each,
# no dependencies (both ship self-contained browser bundles), pinned versions.
#
#   bash docs/install_assets.sh          # idempotent: does nothing when up to date
#   bash docs/install_assets.sh --force  # reinstall
#
# Needs npm (Debian: apt-get install npm) and tar.
set -euo pipefail

KATEX_VERSION=0.19.1
MERMAID_VERSION=12.3.0

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
vendor="$root/docs/assets/vendor"
stamp="$vendor/VERSIONS"
wanted="katex@$KATEX_VERSION mermaid@$MERMAID_VERSION"

if [[ "${1:-}" != "--force" && -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    echo "docs/assets/vendor is up to date ($wanted)"
    exit 0
fi

if ! command -v npm >/dev/null; then
    echo "install_assets.sh: npm not found; install it (apt-get install npm) and run again" >&2
    exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent --loglevel=error "katex@$KATEX_VERSION" "mermaid@$MERMAID_VERSION" >/dev/null)

mkdir -p "$work/katex" "$work/mermaid"
tar -xzf "$work/katex-$KATEX_VERSION.tgz" -C "$work/katex" --strip-components=1 \
    package/LICENSE package/dist/katex.min.js package/dist/katex.min.css package/dist/fonts
tar -xzf "$work/mermaid-$MERMAID_VERSION.tgz" -C "$work/mermaid" --strip-components=1 \
    package/LICENSE package/dist/mermaid.min.js

rm -rf "$vendor"
mkdir -p "$vendor/katex" "$vendor/mermaid"
# KaTeX: the script, its stylesheet and the fonts the stylesheet names (woff2 is
# what every current browser picks; woff and ttf are its fallbacks).
cp "$work/katex/dist/katex.min.js" "$work/katex/dist/katex.min.css" "$work/katex/LICENSE" "$vendor/katex/"
cp -r "$work/katex/dist/fonts" "$vendor/katex/fonts"
cp "$work/mermaid/dist/mermaid.min.js" "$work/mermaid/LICENSE" "$vendor/mermaid/"
echo "$wanted" > "$stamp"
echo "installed $wanted into docs/assets/vendor"
