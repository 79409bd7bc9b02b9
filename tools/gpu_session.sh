#!/usr/bin/env bash
# The GPU rows of #29 and #30 on a lent GPU, one stage per device-tool call (each call: at most 10 minutes).
#
# Here, once per checkout (.device/ is git-ignored; the tool carries it, the ../shared beside the repo it does not):
#     mkdir -p .device && cp ../shared/data/cifar10-jpeg.tar.gz ../shared/data/prepare_cifar10.py .device/
# Then, with the device tool (the copy there has no git metadata: name the commit, `git rev-parse HEAD` here):
#     run(command="ZOO_GIT_COMMIT=SHA bash tools/gpu_session.sh tta", carry=[".device"], timeout_s=590)
#     run(command="ZOO_GIT_COMMIT=SHA bash tools/gpu_session.sh zoo", carry=[".device"], timeout_s=590)
#   tta: benchmarks/time_to_accuracy.py, fast vs fastest, seeds 0 1 2  -> $OUT/time_to_accuracy.gpu.json
#   screen: #29's accuracy question, which a CPU answers at two seed pairs an hour: `fastest` against one change of
#        it (SET="batch_size=512"), on 5,000 held-out training images (the test split is never read), seed pairs
#        from 100 on in WORKERS (4) processes sharing the GPU for BUDGET (420) seconds; then the seeds whose two runs
#        finished, summarised with their paired differences -> $OUT/screen.json (the pairs' times say nothing)
#   zoo: benchmarks/train_zoo.py --stage both (every row without weights or below target) -> $OUT/runs-N.tar.gz,
#        packed by tools/pack_runs.py into what the tool returns (8 files of 16 MiB at most; it names what it leaves)
# Back here: tar xzf runs-N.tar.gz -C runs/gpu (and cat NAME.tar.part-* | tar x -C runs/gpu for a run cut into
# parts), then python tools/publish.py runs/gpu/NAME-final --tag cifar10 ...
# What can come back: 6 files of 16 MiB (the log takes another). resnet20-110, mobilenetv2_x1_0, wrn16_4 and
# airbench94_net fit a shared archive; a bigger run is cut into parts while files are left: mobilenetv2_x1_4
# (16.5 MiB), resnet18 / preact_resnet18 (43), vgg11_bn-vgg19_bn (35-76) one or two at a time (pick them with
# --models); wrn28_10 (139) never does.
# Device time is 15 minutes a task, start included: `tta` first, then `screen` or `zoo` with a few rows that fit, e.g.
#     SET='muon_lr=0.16' bash tools/gpu_session.sh screen
#   (`fastest`'s renormalised Muon at a third more rate: docs/speed.md's seventh try chose 0.12 from one setting;
#   GPU pairs are seeds 100 on, none of the CPU's)
#     EXTRA="--models resnet20 resnet32 resnet44 resnet56" bash tools/gpu_session.sh zoo
#
# Environment: OUT (the tool sets it), WORK (scratch, default /tmp/zoo-gpu), DATA (a prepared CIFAR-10 folder: skips
# the preparation), DEVICE (default cuda), EXTRA (more flags for the stage's script: the CPU smoke test uses it);
# for `screen` also SET (required), WORKERS, BUDGET, PAIRS (seed pairs a worker may reach, default 40), VAL (5000).
set -euo pipefail
stage=${1:?usage: bash tools/gpu_session.sh tta|screen|zoo}
case $stage in # before any work: a typo must not cost device time
tta | zoo) ;;
screen) : "${SET:?SET: the change of fastest to screen, e.g. SET=batch_size=512}" ;;
*)
    echo "unknown stage $stage: expected tta, screen or zoo" >&2
    exit 2
    ;;
esac
cd "$(dirname "$0")/.."
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
work=${WORK:-/tmp/zoo-gpu}
out=${OUT:?OUT: the folder whose files come back}
data=${DATA:-$work/data}
mkdir -p "$work" "$out"
if [ ! -d "$data/cifar-10-batches-bin" ]; then
    python3 .device/prepare_cifar10.py "$data"
fi
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"
case $stage in
tta)
    # shellcheck disable=SC2086  # EXTRA is a list of flags
    python3 benchmarks/time_to_accuracy.py --data-dir "$data" --seeds 0 1 2 --out "$work/tta" \
        --json "$out/time_to_accuracy.gpu.json" ${EXTRA:-} 2>&1 | tee "$out/tta.log"
    ;;
screen)
    workers=${WORKERS:-4} pairs=${PAIRS:-40}
    screen=(python3 benchmarks/time_to_accuracy.py --data-dir "$data" --val-split "${VAL:-5000}" --baseline fastest
        --candidate fastest --out "$work/screen")
    last=$((99 + workers * pairs))
    for ((w = 0; w < workers; w++)); do # worker w: seeds 100 + w, 100 + w + WORKERS, ...; stopped by the budget
        # shellcheck disable=SC2046,SC2086  # the seeds, SET and EXTRA are lists
        timeout -s TERM "${BUDGET:-420}" "${screen[@]}" --seeds $(seq $((100 + w)) "$workers" "$last") --set $SET \
            ${EXTRA:-} >"$out/screen-$w.log" 2>&1 &
    done
    wait # a run the budget stopped is left unfinished and not counted: --finished pairs the seeds done
    # shellcheck disable=SC2046,SC2086
    "${screen[@]}" --seeds $(seq 100 "$last") --set $SET ${EXTRA:-} --finished \
        --json "$out/screen.json" 2>&1 | tee "$out/screen.log"
    ;;
zoo)
    # shellcheck disable=SC2086
    python3 benchmarks/train_zoo.py --device "${DEVICE:-cuda}" --data-dir "$data" --out "$work/zoo" --stage both \
        ${EXTRA:-} 2>&1 | tee "$out/zoo.log"
    python3 tools/pack_runs.py "$work/zoo" "$out" --max-files 6 || echo "pack_runs: some runs did not fit (above)"
    ;;
esac
