#!/bin/sh
# A stand-in for llama-bench: logs its arguments and LD_LIBRARY_PATH to
# $FAKE_LLAMA_BENCH_LOG and prints llama-bench's JSON (-o json) for a
# prefill at 100 t/s and a decode at 20 t/s, with the -p and -n it got.
# With $FAKE_LLAMA_BENCH_BURN it first spends CPU time in proportion to -r.
echo "theirs $* lib=$LD_LIBRARY_PATH" >> "$FAKE_LLAMA_BENCH_LOG"
if [ -n "$FAKE_LLAMA_BENCH_FAIL" ]; then
	echo "error: $FAKE_LLAMA_BENCH_FAIL" >&2
	exit 1
fi
p=0 n=0 r=1
while [ $# -gt 0 ]; do
	case "$1" in
	-p) p=$2; shift ;;
	-n) n=$2; shift ;;
	-r) r=$2; shift ;;
	esac
	shift
done
# $FAKE_LLAMA_BENCH_BURN loop iterations per repetition, to use CPU time
i=0
while [ "$i" -lt $((r * ${FAKE_LLAMA_BENCH_BURN:-0})) ]; do i=$((i + 1)); done
cat <<JSON
[
  {
    "build_commit": "unknown", "cpu_info": "fake", "backends": "CPU",
    "model_type": "llama ?B F16", "n_threads": 2,
    "n_prompt": $p, "n_gen": 0, "n_depth": 0,
    "avg_ns": 160000000, "stddev_ns": 0, "avg_ts": 100.000000, "stddev_ts": 0.5,
    "samples_ns": [ 160000000 ], "samples_ts": [ 100 ]
  },
  {
    "build_commit": "unknown", "cpu_info": "fake", "backends": "CPU",
    "model_type": "llama ?B F16", "n_threads": 2,
    "n_prompt": 0, "n_gen": $n, "n_depth": 0,
    "avg_ns": 200000000, "stddev_ns": 0, "avg_ts": 20.000000, "stddev_ts": 0.1,
    "samples_ns": [ 200000000 ], "samples_ts": [ 20 ]
  }
]
JSON
