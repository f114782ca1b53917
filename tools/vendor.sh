#!/usr/bin/env bash
# Copy the browser assets the built book needs into _vendor/, so that no page loads anything from
# a CDN: MathJax 3 (with its fonts, same relative layout as in the npm package), require.js and the
# ipywidgets embedder (@jupyter-widgets/html-manager, with the icon fonts it loads relative to
# itself). _config.yml serves _vendor/ as a Sphinx static path (-> _build/html/_static/).
# Versions are locked by package-lock.json; node_modules/ and _vendor/ are build outputs.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --ignore-scripts
fi

rm -rf _vendor
mkdir -p _vendor/mathjax _vendor/jupyter-widgets

# MathJax: the whole es5 tree (components are loaded lazily relative to tex-chtml.js).
cp -R node_modules/mathjax/es5/. _vendor/mathjax/
cp node_modules/mathjax/LICENSE _vendor/mathjax/LICENSE

# require.js (the AMD loader the widget embedder needs).
cp node_modules/requirejs/require.js _vendor/require.js

# The widget embedder and the fonts it references (hashed names, resolved relative to the script).
hm=node_modules/@jupyter-widgets/html-manager/dist
cp "$hm"/embed-amd.js _vendor/jupyter-widgets/
find "$hm" -maxdepth 1 -type f \( -name '*.woff' -o -name '*.woff2' -o -name '*.ttf' \
  -o -name '*.eot' -o -name '*.svg' \) -exec cp {} _vendor/jupyter-widgets/ \;
# Our loader config for it: fonts from this folder, MathJax 3 instead of MathJax 2's API.
cp tools/widgets-offline.js _vendor/jupyter-widgets/offline.js

touch _vendor/.stamp
echo "vendored: $(du -sh _vendor | cut -f1) into _vendor/"
