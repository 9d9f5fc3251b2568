#!/usr/bin/env bash
# gankit's checks on a CUDA GPU: the CUDA tests, `gankit bench --device cuda`, and the
# mnist-dcgan preset trained on the GPU and scored (domain FID and class shares there; the
# standard FID is computed afterwards from the returned run, see docs/performance.md).
#
# usage: benchmarks/gpu_check.sh OUTDIR STAGE...     STAGE: env tests bench train search suite
#   env    the GPU, driver, python and torch versions      -> OUTDIR/env.txt
#   tests  the CUDA path's tests and the runtime tests      -> OUTDIR/tests.txt
#   bench  gankit bench --device cuda (3 rounds per case)  -> OUTDIR/bench_cuda.{json,txt}
#   train  gankit train --preset mnist-dcgan --device cuda, then gankit eval (domain FID,
#          classes) -> OUTDIR/train.txt, OUTDIR/eval.json, OUTDIR/run.tar (the run, newest
#          checkpoint only)
#   search variants of the mnist-dcgan preset trained side by side on the one GPU (each run
#          is bound by the host's kernel launches, so several share it), each then scored
#          there (domain FID, classes) -> OUTDIR/search-NAME.tar: the run (newest checkpoint
#          only) with train.txt and eval.json inside, for the standard FID elsewhere. The
#          variants come from the file named by SEARCH, a line each: NAME SEED [gankit train
#          options]; at most 7 (8 files come back from a lent machine, 16 MiB each: a run of
#          width 64 is 14 MiB; with SLIM=1, see pack_run, width 96 fits too)
#   suite  the whole test suite, in parallel                -> OUTDIR/suite.txt
# Limits (seconds) by environment: TRAIN_LIMIT (default 420; the run is interrupted with
# SIGINT, which stops it after the current step with a checkpoint), SUITE_LIMIT (150).
# STEPS overrides the preset's steps and DEVICE the device (a dry run on a CPU).
set -u
out=${1:?usage: gpu_check.sh OUTDIR STAGE...}
shift
mkdir -p "$out"
py=${PYTHON:-python3}
dev=${DEVICE:-cuda}
run=${RUN_DIR:-runs/gpu-mnist-dcgan-s0}
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

stage_env() {
    { date -u; nvidia-smi || true; nproc
      $py -c "import sys, torch; print(sys.version); print('torch', torch.__version__, 'cuda', torch.version.cuda,
'cudnn', torch.backends.cudnn.version()); print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no GPU')"
    } > "$out/env.txt" 2>&1
}

stage_tests() {
    timeout 240 $py -m pytest -q -p no:cacheprovider tests/training/test_cuda.py tests/training/test_runtime.py \
        > "$out/tests.txt" 2>&1
    echo "tests rc=$?"
}

stage_bench() {
    timeout 150 $py -m gankit bench --device "$dev" --rounds 3 --out "$out/bench_cuda.json" > "$out/bench_cuda.txt" 2>&1
    echo "bench rc=$?"
}

stage_train() {
    local t0 steps=()
    t0=$(date +%s)
    [ -n "${STEPS:-}" ] && steps=(--steps "$STEPS")
    timeout -s INT -k 30 "${TRAIN_LIMIT:-420}" $py -m gankit train --preset mnist-dcgan --device "$dev" --seed 0 \
        "${steps[@]}" --out "$run" > "$out/train.txt" 2>&1
    echo "train rc=$? wall=$(( $(date +%s) - t0 )) s"
    timeout 120 $py -m gankit eval "$run" --metrics fid --extractor classifier --json > "$out/eval.json" 2> "$out/eval.err"
    echo "eval rc=$?"
    pack_run "$run" "$out/run.tar"
    echo "tar rc=$?"
}

# the run without its older checkpoints and per-step pictures: what scoring it elsewhere needs.
# With SLIM=1 the newest checkpoint's optimiser states are emptied first (about half its size),
# so that a wider model's run comes back under 16 MiB: such a run can be scored, not resumed.
pack_run() {
    local run=$1 tarfile=$2 newest
    newest=$(ls "$run"/checkpoints/step_*.pt | sort | tail -1)
    [ "${SLIM:-0}" = 1 ] && $py -c 'import sys; from gankit.training.checkpoint import drop_optimizer_states as d; d(sys.argv[1])' "$newest"
    tar -cf "$tarfile" --exclude='*/samples/*' --exclude='*/checkpoints/*' --exclude='*/tensorboard/*' "$run" \
        && tar -rf "$tarfile" "$newest" "$newest.sha256"
}

stage_search() {
    local name seed opts t0 names=()
    t0=$(date +%s)
    mkdir -p runs
    while read -r name seed opts; do
        case $name in ''|'#'*) continue ;; esac
        names+=("$name")
        # shellcheck disable=SC2086  # the options are words
        timeout -s INT -k 30 "${TRAIN_LIMIT:-420}" $py -m gankit train --preset mnist-dcgan --device "$dev" \
            --seed "$seed" $opts --out "runs/search-$name" > "runs/search-$name.txt" 2>&1 &
    done < "${SEARCH:?SEARCH names the file of variants}"
    wait
    echo "search: ${#names[@]} runs side by side, wall=$(( $(date +%s) - t0 )) s" | tee "$out/search.txt"
    for name in "${names[@]}"; do
        mv "runs/search-$name.txt" "runs/search-$name/train.txt" || continue
        timeout 120 $py -m gankit eval "runs/search-$name" --metrics fid --extractor classifier --json \
            > "runs/search-$name/eval_domain.json" 2>> "runs/search-$name/train.txt"
        echo "eval $name rc=$?" | tee -a "$out/search.txt"
        pack_run "runs/search-$name" "$out/search-$name.tar"
    done
}

stage_suite() {
    timeout "${SUITE_LIMIT:-150}" $py -m pytest -v -rfE -p no:cacheprovider -n 12 tests > "$out/suite.txt" 2>&1
    echo "suite rc=$?"
}

for s in "$@"; do
    case $s in
        env|tests|bench|train|search|suite) "stage_$s" ;;
        *) echo "unknown stage $s" >&2; exit 2 ;;
    esac
done
