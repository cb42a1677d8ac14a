#!/usr/bin/env bash
# The trial command of the nnictl experiments: run Python with the interpreter that launched
# `nnictl create`, whatever PATH holds where the trial runs.
#
#   bash strategies/nnictl/launch_trial.sh trainers/trial.py --cfg CFG [KEY VALUE ...]
#
# Which Python, in order: $POSENAS_PYTHON; the one NNI handed its manager (`node ... main.js
# --python-interpreter PY`, an ancestor of every local trial); `python` on PATH (the remote
# training service puts each machine's pythonPath first); `python3`.
#
# A trial whose Python is killed (the OOM killer's SIGKILL, a crash) ends here with its status
# (137: killed) as a normal exit, so NNI records it FAILED; NNI takes a trial that dies of a
# signal for one it cancelled itself (USER_CANCELED). A signal sent to this script (nnictl stop)
# is passed on to Python, and the script then dies of it too: a stopped trial stays cancelled.
set -uo pipefail

python="${POSENAS_PYTHON:-}"
pid=$PPID
while [[ -z "$python" && "$pid" -gt 1 && -r "/proc/$pid/cmdline" ]]; do
  mapfile -d '' argv < "/proc/$pid/cmdline"
  for ((i = 0; i + 1 < ${#argv[@]}; i++)); do
    if [[ "${argv[$i]}" == "--python-interpreter" ]]; then
      python="${argv[$((i + 1))]}"
    fi
  done
  stat=$(< "/proc/$pid/stat")
  read -r -a fields <<< "${stat##*) }"   # after "(comm) ", which may hold spaces
  pid=${fields[1]}                       # the parent's pid
done
if [[ -z "$python" ]]; then
  python=$(command -v python || command -v python3)
fi

"$python" "$@" &
child=$!
forward() {
  trap - "$1"
  kill -s "$1" "$child" 2>/dev/null
  wait "$child"
  kill -s "$1" $$
}
trap 'forward TERM' TERM
trap 'forward HUP' HUP
trap 'forward INT' INT
wait "$child"
exit $?
