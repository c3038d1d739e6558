#!/bin/sh
# gpucheck.sh: the CUDA backend's whole GPU check in one short run.
#
#   sh cuda/gpucheck.sh prep   on a machine with Go and ../shared: builds the
#                              static binary and copies the small shared
#                              models and references into .gpucheck/ (ignored
#                              by git, under 60 MiB) for carrying to a GPU host
#   sh cuda/gpucheck.sh        on the GPU host (from the repository root):
#                              kernel and runner checks, reference parity, then
#                              the speed of Llama 3 8B-shaped Q4_0 and Q4_K_M
#                              models
#
# Environment: GPUCHECK_BENCH=random (default) times Llama 3 8B-shaped
# Q4_0 and Q4_K_M weights made in memory; GPUCHECK_BENCH=synth writes them
# with `helexa tools synth` into SYNTH_DIR (default /tmp, about 10 GB) first;
# GPUCHECK_BENCH=none skips the speed part.
set -u
dir=.gpucheck
budget=$((60 * 1024 * 1024))

size() { du -sb "$1" | cut -f1; }

prep() {
	set -e
	mkdir -p "$dir/shared/models" "$dir/shared/reference"
	CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$dir/helexa" .
	cp ../shared/reference/*.json "$dir/shared/reference/"
	used=$(size "$dir")
	for m in stories260K.gguf stories260K-F16.gguf synth-25m-Q4_0.gguf synth-25m-Q4_K_M.gguf synth-25m-Q5_K_M.gguf synth-25m-Q6_K.gguf synth-25m-Q8_0.gguf; do
		[ -f "../shared/models/$m" ] || continue
		s=$(size "../shared/models/$m")
		if [ $((used + s)) -le $budget ]; then
			cp "../shared/models/$m" "$dir/shared/models/"
			used=$((used + s))
			echo "gpucheck prep: carrying $m"
		else
			echo "gpucheck prep: leaving out $m (over the carry budget)"
		fi
	done
	echo "gpucheck prep: $dir holds $((used / 1024 / 1024)) MiB; carry it and run: sh cuda/gpucheck.sh"
}

run() {
	bin=${HELEXA:-$dir/helexa}
	[ -x "$bin" ] || bin=./helexa
	if [ ! -x "$bin" ]; then
		echo "gpucheck: no binary: run 'sh cuda/gpucheck.sh prep' (or make build) first" >&2
		exit 2
	fi
	shared=$dir/shared
	[ -d "$shared/reference" ] || shared=../shared
	command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used --format=csv
	rc=0
	timeout 300 "$bin" tools gpucheck --shared "$shared" || rc=1
	case "${GPUCHECK_BENCH:-random}" in
	random)
		# Llama 3 8B's shape, random blocks made in memory (seconds).
		timeout 240 "$bin" tools gpucheck --checks=false --parity=false --bench-random Q4_0 --bench-random Q4_K_M || rc=1
		;;
	synth)
		# The same shape written by `helexa tools synth` (quantizing 8B
		# values takes minutes even on 16 cores).
		out=${SYNTH_DIR:-/tmp}
		models=""
		for t in Q4_0 Q4_K_M; do
			f=$out/synth-8b-$t.gguf
			if [ ! -f "$f" ]; then
				timeout 400 "$bin" tools synth --dim 4096 --layers 32 --heads 32 --kv-heads 8 --ffn 14336 \
					--vocab-from "$shared/models/stories260K.gguf" --type "$t" --ctx 4096 --out "$f.tmp" &&
					mv "$f.tmp" "$f" || { echo "gpucheck: synth $t failed or timed out"; rm -f "$f.tmp"; rc=1; continue; }
			fi
			models="$models --bench $f"
		done
		if [ -n "$models" ]; then
			# shellcheck disable=SC2086
			timeout 240 "$bin" tools gpucheck --checks=false --parity=false $models || rc=1
		fi
		;;
	esac
	exit $rc
}

case "${1:-run}" in
prep) prep ;;
run) run ;;
*)
	echo "usage: sh cuda/gpucheck.sh [prep|run]" >&2
	exit 2
	;;
esac
