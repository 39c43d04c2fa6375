#!/usr/bin/env bash
# The GPU check: runs every GPU test, the CUDA bench and the CLI of this
# bundle (made by `cargo xtask gpu-bundle` on a machine with Rust) on a
# machine with an NVIDIA GPU and CUDA 13, with SCRATCHPAD_REQUIRE_GPU=1 so
# that nothing skips, and writes one results file.
#
#   bash run.sh [RESULTS]      RESULTS defaults to $OUT/gpu-results.txt when
#                              $OUT is set, else gpu-results.txt beside this
#                              script
#
# Needs no Rust and no network; finds its binaries and data relative to
# itself, so the folder works from any path. Exits 0 when every check
# passed, 1 when one failed, 2 when there is no usable GPU.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
results="${1:-${OUT:+$OUT/gpu-results.txt}}"
results="${results:-$here/gpu-results.txt}"
mkdir -p "$(dirname "$results")"
: >"$results"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

export SCRATCHPAD_REQUIRE_GPU=1
export SCRATCHPAD_TEST_DATA="$here/data"
export SCRATCHPAD_BIN="$here/bin/scratchpad"
export CRITERION_HOME="$work/criterion"
# CUDA 13's libraries (NVRTC, cuBLAS, cuBLASLt) where a CUDA toolkit puts them.
for dir in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda-13*/lib64; do
    [ -d "$dir" ] && LD_LIBRARY_PATH="$dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
done
export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}"

say() { printf '%s\n' "$*" | tee -a "$results"; }
failures=0
fail() { say "FAILED: $*"; failures=$((failures + 1)); }

say "# scratchpad GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), bundle $(cat "$here/VERSION" 2>/dev/null || echo unknown)"

# 1. Is there a GPU at all? The CLI's own probe gives the error a user sees.
if command -v nvidia-smi >/dev/null 2>&1; then
    say "gpu: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 | head -1)"
    say "cuda (driver): $(nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)"
else
    say "gpu: nvidia-smi not found"
fi
probe="$("$SCRATCHPAD_BIN" generate --synthetic synth-260k --device cuda -n 2 -t 0 2>&1 >/dev/null)"
if [ $? -ne 0 ]; then
    say "error: no usable GPU: the CUDA backend could not start"
    say "  $probe"
    say "  (this script needs an NVIDIA GPU, a CUDA 13 driver (580 or newer) and CUDA 13's libnvrtc, libcublas and libcublasLt on LD_LIBRARY_PATH)"
    exit 2
fi
say "probe: the CUDA backend starts"

# 2. Every GPU test, nothing skipped.
say ""
say "## tests (SCRATCHPAD_REQUIRE_GPU=1)"
for test in "$here"/tests/*; do
    name="$(basename "$test")"
    log="$work/$name.log"
    timeout 150 "$test" >"$log" 2>&1
    status=$?
    summary="$(grep -E '^test result:|^[a-z_]+: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -1)"
    say "$name: ${summary:-no summary} (exit $status)"
    grep -E '^test .* \.\.\. (ok|FAILED)$|\.\.\. FAILED$' "$log" | sed 's/^/    /' >>"$results"
    if [ $status -ne 0 ]; then
        fail "$name"
        grep -A25 -E "^---- .* stdout ----|panicked at" "$log" | head -60 | sed 's/^/    | /' | tee -a "$results"
    fi
    if grep -q '^skipped:' "$log"; then
        fail "$name skipped something under SCRATCHPAD_REQUIRE_GPU=1: $(grep -m1 '^skipped:' "$log")"
    fi
done

# 3. Decode tok/s, eager and graph-replayed, from the CLI (greedy, 256 steps).
say ""
say "## decode tok/s (generate -t 0 -n 256, planned pool, cuBLAS)"
if "$SCRATCHPAD_BIN" synth synth-15m --out "$work/synth-15m.bin" >/dev/null 2>"$work/synth.log"; then
    for model in "synth-15m:$work/synth-15m.bin" "stories260K:$here/data/models/stories260K.bin"; do
        label="${model%%:*}"; path="${model#*:}"
        for mode in eager graph; do
            extra=(); [ "$mode" = graph ] && extra=(--cuda-graph)
            out="$(timeout 60 "$SCRATCHPAD_BIN" generate --model "$path" --device cuda --pool planned -t 0 -n 256 "${extra[@]}" 2>&1 >/dev/null)"
            rate="$(printf '%s\n' "$out" | sed -n 's/^achieved tok\/s: //p')"
            if [ -n "$rate" ]; then say "$label $mode: $rate tok/s"; else fail "$label $mode: $out"; fi
        done
    done
else
    fail "scratchpad synth synth-15m: $(cat "$work/synth.log")"
fi

# 4. cuBLAS against cuBLASLt, and the bench's decode figures (criterion).
say ""
say "## cuda bench (criterion, short runs: 0.5 s warm-up, 2 s measurement)"
bench="$here/bin/bench-cuda"
if timeout 150 "$bench" --bench --warm-up-time 0.5 --measurement-time 2 >"$work/bench.log" 2>&1; then
    grep -E '^cuda/|time:|thrpt:' "$work/bench.log" | sed 's/^ */    /' >>"$results"
else
    fail "the cuda bench (exit $?)"
    tail -30 "$work/bench.log" | sed 's/^/    | /' | tee -a "$results"
fi
if grep -q '^skipped' "$work/bench.log"; then fail "the cuda bench skipped: $(grep -m1 '^skipped' "$work/bench.log")"; fi

# 5. The compare table on the device.
say ""
say "## compare --device cuda (synth-15m, 128 prompt tokens, 64 decode steps, 3 repetitions)"
if timeout 120 "$SCRATCHPAD_BIN" compare --model "$work/synth-15m.bin" --device cuda --steps 64 --repeat 3 --by-tag >"$work/compare.txt" 2>&1; then
    cat "$work/compare.txt" >>"$results"
else
    fail "compare --device cuda"
    tail -20 "$work/compare.txt" | sed 's/^/    | /' | tee -a "$results"
fi
if timeout 120 "$SCRATCHPAD_BIN" compare --model "$work/synth-15m.bin" --device cuda --cuda-graph --pools planned,arena,workspace --steps 64 --repeat 3 >"$work/compare-graph.txt" 2>&1; then
    say ""
    say "## compare --device cuda --cuda-graph"
    cat "$work/compare-graph.txt" >>"$results"
else
    fail "compare --device cuda --cuda-graph"
    tail -20 "$work/compare-graph.txt" | sed 's/^/    | /' | tee -a "$results"
fi

say ""
if [ "$failures" -eq 0 ]; then
    say "gpu-check: all checks passed"
    exit 0
fi
say "gpu-check: $failures checks failed"
exit 1
