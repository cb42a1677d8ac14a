#!/usr/bin/env bash
# The GPU check, one script, one table (about 5 minutes on one GPU; under 8):
#
#   bash benchmarks/gpu.sh                       # CUDA: the full-size figures for README
#   bash benchmarks/gpu.sh --device cpu --smoke  # the same steps, tiny, on CPU (the test suite)
#   ... --json                                   # and a last line {"train", "search", "data"}:
#                                                # each benchmark's own --json result
#
# 1. HRNet-W32's training step, 256x192 batch 32 (smoke: 64x64 batch 2), vs the official
#    pose_hrnet.py network from the same weights: float32 NCHW, float32 channels-last, bf16
#    (benchmarks/train_step.py);
# 2. the DARTS search step of the PNFS space with width choices vs PoseNFS's own first-order
#    step, 256x192 batch 8 (benchmarks/supernet_step.py);
# 3. the data loader's images/s (one worker, and x workers) against the images/s the training
#    step consumes (benchmarks/data_pipeline.py).
# Every benchmark runs in its own processes; this script only gathers their --json lines.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
DEVICE=cuda
SMOKE=0
JSON=0
WORKERS=${WORKERS:-8}
while [ $# -gt 0 ]; do
  case "$1" in
    --device) DEVICE="$2"; shift 2 ;;
    --smoke) SMOKE=1; shift ;;
    --json) JSON=1; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ {exit} NR > 1' "$0"; exit 0 ;;  # the header comment
    *) echo "error: argument: $1: unknown (use --device cpu|cuda, --smoke, --json)" >&2; exit 2 ;;
  esac
done
case "$DEVICE" in cpu|cuda|cuda:*) ;; *) echo "error: argument: --device: cpu or cuda, got $DEVICE" >&2; exit 2 ;; esac
if [ "$DEVICE" != cpu ] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "error: argument: --device: $DEVICE asked for, but torch sees no CUDA device (use --device cpu --smoke)" >&2
  exit 2
fi
if [ "$SMOKE" = 1 ]; then
  TRAIN=(--size 64x64 --batch 2 --steps 1 --warmup 1 --cases official,posenas_nchw,posenas,posenas_bf16)
  SEARCH=(--size 64x64 --batch 2 --steps 1 --cases posenfs,darts)
  DATA=(--images 8 --input-size 64x64 --repeat 1)
  WORKERS=2
else
  TRAIN=(--size 256x192 --batch 32 --steps 10 --warmup 3 --cases official,posenas_nchw,posenas,posenas_bf16)
  SEARCH=(--size 256x192 --batch 8 --steps 5 --cases posenfs,darts,darts@bf16,all_ops)
  DATA=(--images 200 --input-size 256x192 --repeat 3 --upscale 2.0)
fi
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
START=$(date +%s)
echo "[1/3] training step vs official ($DEVICE) ..."
"$PY" -m benchmarks.train_step --device "$DEVICE" "${TRAIN[@]}" --threads 0 --json > "$OUT/train.txt"
echo "[2/3] search step vs PoseNFS ($DEVICE) ..."
"$PY" -m benchmarks.supernet_step --device "$DEVICE" "${SEARCH[@]}" --threads 0 \
  --data "$OUT/search_data" --json > "$OUT/search.txt"
echo "[3/3] data loader vs the step's demand ..."
"$PY" -m benchmarks.data_pipeline "${DATA[@]}" --json > "$OUT/data.txt"
"$PY" - "$OUT" "$DEVICE" "$WORKERS" "$(( $(date +%s) - START ))" "$JSON" <<'EOF'
import json, sys
from pathlib import Path

from trainers.report import format_table

out, device, workers, seconds, as_json = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5] == "1"
last = lambda name: json.loads((out / name).read_text().strip().splitlines()[-1])
train, search, data = last("train.txt"), last("search.txt"), last("data.txt")
batch = [l for l in (out / "train.txt").read_text().splitlines() if ", batch " in l][0]
n = int(batch.split(", batch ")[1].split(",")[0])
rows = []
for case, r in train.items():
    rows.append(["train step", case, f"{r['seconds']:.4f}", f"{r['seconds'] / train['official']['seconds']:.2f}x",
                 f"{r['peak_bytes'] / 2**20:.0f}", f"{r['peak_bytes'] / train['official']['peak_bytes']:.2f}x"])
for case, r in search.items():
    rows.append(["search step", case, f"{r['seconds']:.4f}", f"{r['seconds'] / search['posenfs']['seconds']:.2f}x",
                 f"{r['peak_bytes'] / 2**20:.0f}", f"{r['peak_bytes'] / search['posenfs']['peak_bytes']:.2f}x"])
demand = n / min(train[c]["seconds"] for c in train if c != "official")
rows.append(["data loader", f"1 worker / {workers} workers", f"{data['samples_per_s']:.0f} / {data['samples_per_s'] * workers:.0f} img/s",
             f"{data['samples_per_s'] * workers / demand:.2f}x the fastest step's {demand:.0f} img/s", "-", "-"])
print(format_table(["what", "case", "s/step", "vs reference", "peak MB", "memory vs reference"], rows))
print(f"device {device}; references: official pose_hrnet.py (train), PoseNFS's step (search); "
      f"data loader {workers} workers assumed linear; {seconds} s in all")
if as_json:
    print(json.dumps({"train": train, "search": search, "data": data}))
EOF
