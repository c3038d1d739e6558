#!/bin/sh
# Fetch llama.cpp's vocabulary test files (models/ggml-vocab-NAME.gguf with
# its .inp texts and .out ids) that node/tokenizer's tests compare against,
# into testdata/llama-vocab/ (not part of the repository).
#
#   scripts/fetch-vocab-vectors.sh                 download from GitHub
#   scripts/fetch-vocab-vectors.sh PATH            copy from a llama.cpp checkout,
#                                                  or read a llama.cpp git directory
#
# LLAMA_CPP_REF picks the revision to download (default master).
set -eu

names="bert-bge deepseek-llm"
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/testdata/llama-vocab"
ref=${LLAMA_CPP_REF:-master}
mkdir -p "$dest"

for name in $names; do
	for ext in gguf gguf.inp gguf.out; do
		file="ggml-vocab-$name.$ext"
		tmp="$dest/.$file.tmp"
		if [ $# -ge 1 ] && [ -f "$1/models/$file" ]; then
			cp "$1/models/$file" "$tmp"
		elif [ $# -ge 1 ]; then
			git --git-dir="$1" cat-file blob "HEAD:models/$file" >"$tmp"
		else
			curl -fsSL --retry 3 -o "$tmp" "https://raw.githubusercontent.com/ggml-org/llama.cpp/$ref/models/$file"
		fi
		# a Git LFS pointer is not the file
		if head -c 40 "$tmp" | grep -q '^version https://git-lfs'; then
			rm -f "$tmp"
			echo "$file: got a Git LFS pointer, not the file" >&2
			exit 1
		fi
		mv "$tmp" "$dest/$file"
		echo "$dest/$file"
	done
done
