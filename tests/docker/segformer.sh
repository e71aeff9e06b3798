#!/bin/sh
# A `segformer`-like trainer in POSIX sh (busybox) writing exactly what TAO 6.25's SegFormer `train`
# writes (tests/fixtures/tao_golden/, train_3_epochs is the model), baked into the test image of
# tests/test_docker_launcher.py.
#
#   segformer train -e SPEC.yaml
#
# Reads the few spec keys it needs (the spec is PyYAML safe_dump output, sort_keys=False: nested
# mappings indented by two spaces) and appends JSON lines to results_dir/train/status.json as TAO's
# StatusLogger does (the logger's kpi persists until replaced and is put on every line once set):
#   STARTED "Starting SegFormer train."; only when resuming RUNNING "Resuming training from
#   checkpoint: <path>"; STARTED "Starting Training Loop."; per epoch (0-based e, 10 steps each):
#   when validation is due ((e + 1) % train.validation_interval == 0) RUNNING "Eval metrics
#   generated." with kpi {val_loss, val_acc, val_miou, val_mf1, val_mprecision, val_mrecall} and no
#   epoch key; the epoch line (keys: epoch, step, max_epoch = num_epochs - 1, max_step,
#   time_per_epoch, time_per_step, eta, date, time, status RUNNING, verbosity, message "Training
#   loop in progress", kpi = the current one, none before any was set); RUNNING "Train metrics
#   generated." with kpi {train_loss} (replaces it); then, when (e + 1) % train.checkpoint_interval
#   == 0 (only then: not forced at the last epoch), model_epoch_EEE_step_SSSSS.pth (EEE = e,
#   SSSSS = global step) written atomically (temp file + mv; content {"epoch": e, "step": S,
#   "x": hp.x}), and segformer_model_latest.pth refreshed (a full file until this process saved a
#   model_epoch_* file, then a symlink to the last one). At the end RUNNING "Training loop
#   complete." and RUNNING "Train finished successfully." (no SUCCESS line), exit 0.
# Failures as TAO 6.25's monitor_status: a missing dataset root or resume checkpoint is an OSError
# (FAILURE "File system error: [Errno 2] No such file or directory: '<path>'"), fake.mode=fail a
# ValueError (FAILURE "Parameter validation error: ..."); both exit 1 after a traceback on stderr.
# train.resume_training_checkpoint_path resumes at the checkpoint's epoch + 1 with its step. The
# metric is the fake trainer's known function of hp.x, hp.y, hp.c and the epochs completed (e + 1).
# fake.mode: ok | hang (sleeps forever) | ignore_term (ignores SIGTERM and sleeps forever) | fail.
# fake.epoch_s: seconds per epoch. It also reports on its surroundings (uid, GPUs, mounts) for the
# tests to check.
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
kpi=""  # the logger's kpi (JSON object body): put on every line once set
# line STATUS MESSAGE [DATA]: one status line; DATA = '"key": value' pairs that go first (epoch line).
line() {
    stamp=$(date '+%m %d %Y %H %M %S' | awk '{ printf "\"date\": \"%d/%d/%d\", \"time\": \"%d:%d:%d\"", $1, $2, $3, $4, $5, $6 }')
    text="{"
    [ -n "${3:-}" ] && text="$text$3, "
    text="$text$stamp, \"status\": \"$1\", \"verbosity\": \"INFO\", \"message\": \"$2\""
    [ -n "$kpi" ] && text="$text, \"kpi\": {$kpi}"
    printf '%s}\n' "$text" >> "$status"
}
# fail PREFIX MESSAGE EXCEPTION: what monitor_status writes for a caught exception, then the launcher's exit 1.
fail() {
    line FAILURE "$1: $2"
    echo "Traceback (most recent call last):" >&2
    echo "  File \"/usr/local/bin/segformer\", in train" >&2
    echo "$3: $2" >&2
    exit 1
}
# duration SECONDS: str(datetime.timedelta(seconds=SECONDS)): 0:00:07, 0:00:00.100000.
duration() {
    awk -v s="$1" 'BEGIN {
        if (s < 0) s = 0; w = int(s); us = int((s - w) * 1000000 + 0.5)
        printf "%d:%02d:%02d", int(w / 3600), int(w % 3600 / 60), w % 60
        if (us > 0) printf ".%06d", us }'
}

echo "segformer(sh): uid=$(id -u) gid=$(id -g) cwd=$(pwd) home=${HOME:-}"
echo "segformer(sh): CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES:-<unset>} NVIDIA_VISIBLE_DEVICES=${NVIDIA_VISIBLE_DEVICES:-<unset>} OMP_NUM_THREADS=${OMP_NUM_THREADS:-<unset>}"
echo "segformer(sh): shm_kb=$(df -k /dev/shm | awk 'NR == 2 { print $2 }') memlock=$(ulimit -l)"
if [ -n "${PROBE_PATH:-}" ]; then
    if [ -e "$PROBE_PATH" ]; then echo "probe: visible $PROBE_PATH"; else echo "probe: absent $PROBE_PATH"; fi
fi

epochs=$(get train.num_epochs)
interval=$(get train.checkpoint_interval)
[ -n "$interval" ] && [ "$interval" -gt 0 ] || interval=1
val_interval=$(get train.validation_interval)
[ -n "$val_interval" ] && [ "$val_interval" -gt 0 ] || val_interval=1
resume=$(get train.resume_training_checkpoint_path)
mode=$(get fake.mode)
epoch_s=$(get fake.epoch_s)
x=$(get hp.x); y=$(get hp.y); c=$(get hp.c)
[ -n "$x" ] || x=0.5
[ -n "$y" ] || y=1
steps=10
root=$(get dataset.segment.root_dir)
epoch=0
step=0

trap 'echo "segformer(sh): SIGTERM at epoch $epoch"; exit 143' TERM
line STARTED "Starting SegFormer train."
[ -n "$resume" ] && line RUNNING "Resuming training from checkpoint: $resume"
if [ -n "$root" ]; then
    if [ ! -d "$root" ]; then
        echo "ERROR: data: $root not found" >&2
        fail "File system error" "[Errno 2] No such file or directory: '$root'" FileNotFoundError
    fi
    if touch "$root/.automl-write-probe" 2>/dev/null; then
        rm -f "$root/.automl-write-probe"
        echo "dataset: WRITABLE $root"
    else
        echo "dataset: read-only $root ($(ls "$root" | wc -l) entries)"
    fi
fi
if [ "$mode" = "fail" ]; then
    fail "Parameter validation error" "fake failure requested" ValueError
fi
if [ -n "$resume" ]; then
    if [ ! -f "$resume" ]; then
        fail "File system error" "[Errno 2] No such file or directory: '$resume'" FileNotFoundError
    fi
    done_epoch=$(sed -n 's/.*"epoch": *\([0-9][0-9]*\).*/\1/p' "$resume")
    step=$(sed -n 's/.*"step": *\([0-9][0-9]*\).*/\1/p' "$resume")
    [ -n "$step" ] || step=$(((done_epoch + 1) * steps))
    epoch=$((done_epoch + 1))
    echo "resuming from $resume (epoch $done_epoch done) at epoch $epoch"
fi
if [ "$mode" = "ignore_term" ]; then
    trap '' TERM
    echo "segformer(sh): ignoring SIGTERM"
    sleep 3600
fi
line STARTED "Starting Training Loop."
last=$((epochs - 1))
saved=""  # the last model_epoch_* file this process saved
while [ "$epoch" -lt "$epochs" ]; do
    began=$(date +%s)
    if [ "$mode" = "hang" ]; then
        echo "segformer(sh): hanging"
        sleep 3600 & wait $!
    fi
    case "$epoch_s" in
        ""|0|0.0) ;;
        *) sleep "$epoch_s" & wait $! ;;
    esac
    step=$((step + steps))
    score=$(awk -v x="$x" -v y="$y" -v c="$c" -v e="$((epoch + 1))" 'BEGIN {
        d = x - 0.7; a = y - 3; if (a < 0) a = -a
        s = 1 - d * d - 0.02 * a; if (c == "b") s += 0.05
        s *= 1 - 0.5 / (1 + e); printf "%.6f", s }')
    if [ $(((epoch + 1) % val_interval)) -eq 0 ]; then
        kpi=$(awk -v s="$score" 'BEGIN {
            printf "\"val_loss\": %.6f, \"val_acc\": %.6f, \"val_miou\": %.6f, \"val_mf1\": %.6f, \"val_mprecision\": %.6f, \"val_mrecall\": %.6f",
                1 - s, 0.5 + 0.5 * s, s, 0.95 * s + 0.05, 0.9 * s + 0.1, 0.8 * s + 0.2 }')
        line RUNNING "Eval metrics generated."
        echo "epoch $((epoch + 1))/$epochs val_miou=$score"  # epochs completed / num_epochs
    fi
    took=$(($(date +%s) - began))
    line RUNNING "Training loop in progress" "\"epoch\": $epoch, \"step\": $step, \"max_epoch\": $last, \"max_step\": $((epochs * steps)), \"time_per_epoch\": \"$(duration "$took")\", \"time_per_step\": \"$(duration "$(awk -v t="$took" -v n="$steps" 'BEGIN { print t / n }')")\", \"eta\": \"$(duration $(((last - epoch) * took)))\""
    kpi=$(awk -v s="$score" 'BEGIN { printf "\"train_loss\": %.6f", 0.8 * (1 - s) }')
    line RUNNING "Train metrics generated."
    if [ $(((epoch + 1) % interval)) -eq 0 ]; then
        saved=$(printf 'model_epoch_%03d_step_%05d.pth' "$epoch" "$step")
        printf '{"epoch": %d, "step": %d, "x": %s}\n' "$epoch" "$step" "$x" > "$out/.$saved.tmp"
        mv -f "$out/.$saved.tmp" "$out/$saved"
    fi
    if [ -z "$saved" ]; then
        printf '{"epoch": %d, "step": %d, "x": %s}\n' "$epoch" "$step" "$x" > "$out/.segformer_model_latest.pth.tmp"
    else
        rm -f "$out/.segformer_model_latest.pth.tmp"
        ln -s "$saved" "$out/.segformer_model_latest.pth.tmp"
    fi
    mv -f "$out/.segformer_model_latest.pth.tmp" "$out/segformer_model_latest.pth"
    epoch=$((epoch + 1))
done
line RUNNING "Training loop complete."
line RUNNING "Train finished successfully."
echo "segformer(sh): done"
exit 0
