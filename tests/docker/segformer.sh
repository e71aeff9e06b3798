#!/bin/sh
# A `segformer`-like trainer in POSIX sh (busybox) honouring the TAO contract, baked into the test
# image of tests/test_docker_launcher.py.
#
#   segformer train -e SPEC.yaml
#
# Reads the few spec keys it needs (the spec is PyYAML safe_dump output, sort_keys=False: nested
# mappings indented by two spaces), appends JSON lines to results_dir/train/status.json
# (STARTED, per epoch a train line and a validation line with kpi.val_miou, SUCCESS), writes
# model_epoch_EEE_step_SSSSS.pth every train.checkpoint_interval epochs and resumes from
# train.resume_training_checkpoint_path. The metric is the fake trainer's known function of hp.x,
# hp.y, hp.c and the epoch. fake.mode: ok | hang (sleeps forever) | ignore_term (ignores SIGTERM
# and sleeps forever) | fail. fake.epoch_s: seconds per epoch. It also reports on its
# surroundings (uid, GPUs, mounts) for the tests to check.
set -u

action="${1:-}"
[ $# -gt 0 ] && shift
spec=""
while [ $# -gt 0 ]; do
    case "$1" in
        -e) spec="${2:-}"; [ $# -gt 1 ] && shift; shift ;;
        *) shift ;;
    esac
done
if [ -z "$spec" ] || [ ! -f "$spec" ]; then
    echo "ERROR: spec file '$spec' not found" >&2
    exit 1
fi

# get a.b.c -> the scalar at that dotted key ('' when absent); quotes removed.
get() {
    awk -v want="$1" '
        /^[ ]*#/ || /^[ ]*$/ { next }
        {
            match($0, /^ */); ind = RLENGTH
            rest = substr($0, ind + 1)
            if (rest ~ /^- /) next
            c = index(rest, ":"); if (c == 0) next
            key = substr(rest, 1, c - 1)
            val = substr(rest, c + 1); sub(/^ +/, "", val)
            d = int(ind / 2); path[d] = key
            full = path[0]; for (i = 1; i <= d; i++) full = full "." path[i]
            if (full == want) { print val; exit }
        }' "$spec" | sed -e "s/^'\(.*\)'\$/\1/" -e 's/^"\(.*\)"$/\1/'
}

results=$(get results_dir)
out="$results/$action"
mkdir -p "$out" || { echo "ERROR: cannot create $out" >&2; exit 1; }
status="$out/status.json"
line() {
    printf '{"date": "%s", "time": "%s", "verbosity": "INFO", %s}\n' \
        "$(date +%-m/%-d/%Y 2>/dev/null || date +%m/%d/%Y)" "$(date +%H:%M:%S)" "$1" >> "$status"
}

echo "segformer(sh): uid=$(id -u) gid=$(id -g) cwd=$(pwd) home=${HOME:-}"
echo "segformer(sh): CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-<unset>} NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES:-<unset>} OMP_NUM_THREADS=${OMP_NUM_THREADS:-<unset>}"
echo "segformer(sh): shm_kb=$(df -k /dev/shm | awk 'NR == 2 { print $2 }') memlock=$(ulimit -l)"
if [ -n "${PROBE_PATH:-}" ]; then
    if [ -e "$PROBE_PATH" ]; then echo "probe: visible $PROBE_PATH"; else echo "probe: absent $PROBE_PATH"; fi
fi

root=$(get dataset.segment.root_dir)
if [ -n "$root" ]; then
    if [ ! -d "$root" ]; then
        line '"status": "FAILURE", "message": "data: dataset root not found"'
        echo "ERROR: data: $root not found" >&2
        exit 1
    fi
    if touch "$root/.automl-write-probe" 2>/dev/null; then
        rm -f "$root/.automl-write-probe"
        echo "dataset: WRITABLE $root"
    else
        echo "dataset: read-only $root ($(ls "$root" | wc -l) entries)"
    fi
fi

epochs=$(get train.num_epochs)
interval=$(get train.checkpoint_interval)
[ -n "$interval" ] || interval=1
resume=$(get train.resume_training_checkpoint_path)
mode=$(get fake.mode)
epoch_s=$(get fake.epoch_s)
x=$(get hp.x); y=$(get hp.y); c=$(get hp.c)
[ -n "$x" ] || x=0.5
[ -n "$y" ] || y=1

start=0
if [ -n "$resume" ]; then
    if [ ! -f "$resume" ]; then
        line '"status": "FAILURE", "message": "resume checkpoint not found"'
        echo "ERROR: No such file or directory: $resume" >&2
        exit 1
    fi
    start=$(sed -n 's/.*"epoch": *\([0-9][0-9]*\).*/\1/p' "$resume")
    echo "resuming from $resume at epoch $start"
fi

epoch=$start
trap 'echo "segformer(sh): SIGTERM at epoch $epoch"; exit 143' TERM
line '"status": "STARTED", "message": "Starting SegFormer (sh) training"'
if [ "$mode" = "fail" ]; then
    line '"status": "FAILURE", "message": "spec: fake failure requested"'
    exit 1
fi
if [ "$mode" = "ignore_term" ]; then
    trap '' TERM
    echo "segformer(sh): ignoring SIGTERM"
    sleep 3600
fi
steps=10
while [ "$epoch" -lt "$epochs" ]; do
    epoch=$((epoch + 1))
    if [ "$mode" = "hang" ]; then
        echo "segformer(sh): hanging"
        sleep 3600 & wait $!
    fi
    case "$epoch_s" in
        ""|0|0.0) ;;
        *) sleep "$epoch_s" & wait $! ;;
    esac
    score=$(awk -v x="$x" -v y="$y" -v c="$c" -v e="$epoch" 'BEGIN {
        d = x - 0.7; a = y - 3; if (a < 0) a = -a
        s = 1 - d * d - 0.02 * a; if (c == "b") s += 0.05
        s *= 1 - 0.5 / (1 + e); printf "%.6f", s }')
    loss=$(awk -v s="$score" 'BEGIN { printf "%.6f", 1 - s }')
    line "\"status\": \"RUNNING\", \"epoch\": $epoch, \"max_epoch\": $epochs, \"kpi\": {\"train_loss\": $loss}"
    step=$((epoch * steps))
    if [ $((epoch % interval)) -eq 0 ] || [ "$epoch" -eq "$epochs" ]; then
        ckpt="$out/$(printf 'model_epoch_%03d_step_%05d.pth' "$epoch" "$step")"
        printf '{"epoch": %d, "step": %d, "x": %s}\n' "$epoch" "$step" "$x" > "$ckpt"
    fi
    line "\"status\": \"RUNNING\", \"epoch\": $epoch, \"max_epoch\": $epochs, \"kpi\": {\"val_miou\": $score, \"val_loss\": $loss}"
    echo "epoch $epoch/$epochs val_miou=$score"
done
line '"status": "SUCCESS", "message": "Training finished successfully"'
echo "segformer(sh): done"
exit 0
