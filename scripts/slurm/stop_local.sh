#!/usr/bin/env bash
# Stops the cluster that scripts/slurm/start_local.sh started under KVCANARY_SLURM_DIR (same
# default): its jobs are cancelled, then slurmd, slurmctld and munged are stopped, each by the
# pid in its pid file. The directory (config, key, state, logs) stays: a later start reuses the
# key, and --purge removes the whole directory. Stopping a cluster that is not running is not
# an error.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "$here/common.sh"

purge=0
case ${1:-} in
  "") ;;
  --purge) purge=1 ;;
  *) slurm_die "unknown option '$1' (usage: stop_local.sh [--purge])" ;;
esac

stop() {  # stop NAME: SIGTERM, wait up to 10 s for the process itself to end, then SIGKILL
  local pidfile="$SLURM_DIR/run/$1.pid" pid
  pid_alive "$pidfile" "$1" || { rm -f "$pidfile"; return 0; }
  pid=$(<"$pidfile")
  kill -TERM "$pid" 2>/dev/null || true
  # The pid, not the pid file: the daemon removes its file before it has finished exiting, and
  # a restart must not find the old one still holding its port or socket.
  for _ in $(seq 100); do
    proc_alive "$pid" "$1" || break
    sleep 0.1
  done
  if proc_alive "$pid" "$1"; then
    slurm_log "$1 ($pid) still alive after 10 s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  rm -f "$pidfile"
  slurm_log "stopped $1 ($pid)"
}

if [[ -d $SLURM_DIR ]]; then
  export SLURM_CONF="$SLURM_CONF_FILE"
  # Job steps (slurmstepd) outlive slurmd by design, so cancel the jobs while slurmctld can
  # still do it, and give them KillWait to end.
  if pid_alive "$SLURM_DIR/run/slurmctld.pid" slurmctld; then
    jobs=$(squeue -h -o %i 2>/dev/null || true)
    if [[ -n $jobs ]]; then
      slurm_log "cancelling $(wc -w <<<"$jobs") job(s)"
      # shellcheck disable=SC2086
      scancel $jobs 2>/dev/null || true
      for _ in $(seq 150); do
        [[ -z $(squeue -h -o %i 2>/dev/null) ]] && break
        sleep 0.1
      done
    fi
  fi
  stop slurmd
  stop slurmctld
  stop munged
  # Steps left all the same (slurmctld was already dead): theirs is our SLURM_CONF. A step's
  # job processes are its descendants; killing only the step would orphan them, still running.
  steps=()
  for p in /proc/[0-9]*; do
    [[ $(cat "$p/comm" 2>/dev/null) == slurmstepd ]] || continue
    tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qx -- "SLURM_CONF=$SLURM_CONF_FILE" || continue
    steps+=("${p#/proc/}")
  done
  if ((${#steps[@]})); then
    # Parent of every process, from /proc/PID/stat (the field after the state; the command
    # name before it is in parentheses and may hold spaces). /proc/PID/task/*/children would
    # be simpler but needs a kernel option that not every kernel has.
    declare -A kids=()
    for st in /proc/[0-9]*/stat; do
      line=$(cat "$st" 2>/dev/null) || continue
      rest=${line##*) }
      read -r _ ppid _ <<<"$rest"
      kids[$ppid]+=" ${line%% *}"
    done
    tree=("${steps[@]}")
    for ((i = 0; i < ${#tree[@]}; i++)); do  # breadth first: tree grows as children are found
      for c in ${kids[${tree[i]}]:-}; do tree+=("$c"); done
    done
    slurm_log "killing leftover job steps: ${tree[*]}"
    kill -KILL "${tree[@]}" 2>/dev/null || true
  fi
  ((purge)) && rm -rf "$SLURM_DIR" && slurm_log "removed $SLURM_DIR"
fi
exit 0
