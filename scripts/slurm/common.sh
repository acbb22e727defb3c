# shellcheck shell=bash
# Shared by start_local.sh and stop_local.sh (sourced, not run): where a local cluster lives.
#
# Everything of one cluster is under one directory, KVCANARY_SLURM_DIR (default
# /var/lib/kvcanary-slurm): its slurm.conf, the munge key and socket, state, spool, pid and log
# files. Nothing under /etc is written and no system service is touched, so a second cluster
# (the test's, under the build directory) can run beside the default one: it only needs its
# own directory and ports (KVCANARY_SLURM_PORT, slurmd on the next port).

SLURM_DIR=${KVCANARY_SLURM_DIR:-/var/lib/kvcanary-slurm}
# Absolute: the path goes into slurm.conf and into the export line clients use.
[[ $SLURM_DIR == /* ]] || SLURM_DIR="$PWD/$SLURM_DIR"
# shellcheck disable=SC2034  # used by the scripts that source this
SLURM_CONF_FILE="$SLURM_DIR/slurm.conf"
# shellcheck disable=SC2034
MUNGE_SOCKET="$SLURM_DIR/munge/munge.sock"

slurm_log() { echo "[slurm] $*" >&2; }
slurm_die() { echo "[slurm] error: $*" >&2; exit 2; }

# proc_alive PID NAME: a live process (not a zombie waiting for a reaper) whose command is NAME;
# the name check because a pid from a stale pid file may since belong to something else.
proc_alive() {
  local stat
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  [[ $(cat "/proc/$1/comm" 2>/dev/null) == "$2"* ]] || return 1
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat:0:1} != Z ]]
}

# pid_alive PIDFILE NAME: the pid file names a live NAME (daemons remove their own pid file
# when they exit, a killed one leaves it behind).
pid_alive() {
  [[ -s $1 ]] || return 1
  proc_alive "$(<"$1")" "$2"
}
