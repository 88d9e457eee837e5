#!/usr/bin/env bash
# Install everything the tests need, then run them: the README's test command.
#
#   bash scripts/test.sh            # all tests, then the strict docs build
#   bash scripts/test.sh -k vae     # extra arguments go to pytest
#
# System packages (Debian): chromium for the docs' browser test, node and npm for
# the offline KaTeX/Mermaid assets and the formula check, graphviz for `dot`, the
# word list and WordNet (text data), Fashion-MNIST (benchmarks and data tests). torch is pinned to 2.13.0 first so pip takes the wheel that fits
# the machine (CPU here, CUDA on a Linux GPU host) instead of resolving an
# unpinned torch to the multi-GB CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v dot >/dev/null 2>&1 || missing+=(graphviz)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ -f /usr/share/dict/words ] || missing+=(wamerican)                       # the words data set (WSVAE)
[ -d /usr/share/wordnet ] || missing+=(wordnet-base)                      # the glosses data set (WSVAE)
[ -d /usr/share/datasets/fashion-mnist ] || missing+=(dataset-fashion-mnist)  # benchmarks, data tests
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages: ${missing[*]}"
    apt-get update -qq
    # One package that cannot be installed (a node from elsewhere conflicting with
    # Debian's npm, say) must not keep the others out: then try them one by one.
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
      for package in "${missing[@]}"; do
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$package" >/dev/null 2>&1 \
          || echo "warning: apt-get could not install $package; its tests will skip" >&2
      done
    fi
  else
    echo "warning: ${missing[*]} not installed and cannot apt-get here; their tests will skip" >&2
  fi
fi

python -m pip install -q --disable-pip-version-check torch==2.13.0 -e ".[test,docs]"
bash docs/install_assets.sh

# mkdocs plugins print a banner about MkDocs 2 on every build; it is noise here.
export NO_MKDOCS_2_WARNING=1 DISABLE_MKDOCS_2_WARNING=true
# The docs tests build the site strictly into VAEZOO_SITE_DIR; when they did not run
# (pytest -k ...), it is built here.
export VAEZOO_SITE_DIR="${VAEZOO_SITE_DIR:-$PWD/site}"
rm -rf "$VAEZOO_SITE_DIR"
python -m pytest "$@"
if [ ! -f "$VAEZOO_SITE_DIR/index.html" ]; then
  python -m mkdocs build --strict --site-dir "$VAEZOO_SITE_DIR"
fi
