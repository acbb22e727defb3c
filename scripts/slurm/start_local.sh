#!/usr/bin/env bash
# shellcheck disable=SC2034  # `started` is read by the EXIT trap, which shellcheck does not see
# A single-node Slurm cluster on this machine, for examples/slurm_sweep.sh and its test:
# installs Debian's slurm-wlm and munge if missing, writes a slurm.conf for this machine (all
# its CPUs and most of its memory as one node), creates a munge key, and starts munged,
# slurmctld and slurmd as plain background daemons — no systemd, no cgroups — then waits until
# the node is idle. A second call finds it running and returns at once.
#
#   eval "$(bash scripts/slurm/start_local.sh)"   # stdout is one line: export SLURM_CONF=...
#   sinfo                                          # one node, idle
#   bash scripts/slurm/stop_local.sh
#
# Environment: KVCANARY_SLURM_DIR (default /var/lib/kvcanary-slurm; everything of the cluster
# lives there, see common.sh), KVCANARY_SLURM_PORT (slurmctld's port, default 6817; slurmd
# takes the next one), KVCANARY_SLURM_WAIT_S (how long to wait for the node, default 60).
#
# Root: slurmd must be root to start jobs as their submitter, and installing needs root or
# sudo. A non-root user needs an administrator to run this script (jobs then run as whoever
# submits them); sbatch/squeue/sinfo themselves need no privilege, only SLURM_CONF.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=SCRIPTDIR/common.sh
source "$here/common.sh"

CTLD_PORT=${KVCANARY_SLURM_PORT:-6817}
if ! [[ $CTLD_PORT =~ ^[0-9]+$ ]] || ((CTLD_PORT < 1024 || CTLD_PORT >= 65535)); then
  slurm_die "KVCANARY_SLURM_PORT=$CTLD_PORT: not a port in [1024, 65535)"
fi
SLURMD_PORT=$((CTLD_PORT + 1))
WAIT_S=${KVCANARY_SLURM_WAIT_S:-60}
[[ $WAIT_S =~ ^[1-9][0-9]*$ ]] || slurm_die "KVCANARY_SLURM_WAIT_S=$WAIT_S: not a whole number of seconds > 0"

export PATH="$PATH:/usr/sbin:/sbin"  # the daemons and mungekey, for a non-login root shell
host=$(hostname -s)

# slurmd puts one Unix socket per job step into its spool directory, named
# <node>_<job id>.<step id> (ids up to 10 digits), and munged its socket under munge/; a Unix
# socket path is at most 107 bytes. Refuse a directory that would fail later with a bind error
# deep in a daemon's log.
longest=$((${#SLURM_DIR} + 7 + ${#host} + 22))  # 7: "/spool/"; 22: "_", ".", two ids
((longest <= 107)) || slurm_die "KVCANARY_SLURM_DIR=$SLURM_DIR is too long: job step sockets under it would be $longest bytes, above the 107 a Unix socket path allows"

# --- packages --------------------------------------------------------------------------------
need=()
for cmd in munged mungekey slurmctld slurmd sbatch sinfo scontrol; do
  command -v "$cmd" >/dev/null 2>&1 || need+=("$cmd")
done
if ((${#need[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    sudo -n true 2>/dev/null || slurm_die "missing ${need[*]}; installing slurm-wlm and munge needs root or passwordless sudo"
    sudo="sudo -n"
  fi
  slurm_log "installing slurm-wlm munge (missing: ${need[*]})"
  $sudo apt-get update -qq
  # On a Debian without systemd the packages' init scripts may start the system munged (its
  # own key and socket, harmless) — slurmctld's and slurmd's exit without /etc/slurm/slurm.conf.
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi
[[ $(id -u) -eq 0 ]] || slurm_die "slurmd must run as root to start jobs (run this script as root or through sudo)"

mkdir -p "$SLURM_DIR"/{munge,state,spool,log,run}
# munged refuses a key or socket directory that others can write to. Users other than root must
# still reach the socket (munge/) and read slurm.conf; the key itself is a 0400 file.
chmod 0755 "$SLURM_DIR" "$SLURM_DIR/munge"
chmod 0700 "$SLURM_DIR/state" "$SLURM_DIR/run"

# Two starts at once (two terminals, two test runs on one directory) would both find nothing
# running and start everything twice: one at a time. The lock goes with this process; the
# daemons get the descriptor closed (9>&-), or the first one started would hold it for good.
exec 9>"$SLURM_DIR/run/start.lock"
flock 9

# A start that fails half way stops what it started, so that a retry (or another cluster's
# start) does not meet a lone munged or slurmctld holding the socket or port.
started=0
trap 'rc=$?; ((rc == 0 || started == 0)) || bash "$here/stop_local.sh" >/dev/null 2>&1 || true' EXIT

# --- munge -----------------------------------------------------------------------------------
if [[ ! -s $SLURM_DIR/munge/munge.key ]]; then
  mungekey --create --keyfile="$SLURM_DIR/munge/munge.key" --force
  chmod 0400 "$SLURM_DIR/munge/munge.key"
fi
if ! pid_alive "$SLURM_DIR/run/munged.pid" munged; then
  # --force: munged also checks every directory above the key and socket, and a clone (the
  # test's cluster lives in the build directory) may sit under a group-writable one; the key
  # is protected by its own 0400 and its directory's 0755.
  started=1
  munged --force --socket="$MUNGE_SOCKET" --key-file="$SLURM_DIR/munge/munge.key" \
    --pid-file="$SLURM_DIR/run/munged.pid" --log-file="$SLURM_DIR/log/munged.log" \
    --seed-file="$SLURM_DIR/munge/munged.seed" 9>&-
fi
for _ in $(seq 50); do
  munge --socket="$MUNGE_SOCKET" -n </dev/null 2>/dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null 2>&1 && break
  sleep 0.1
done
munge --socket="$MUNGE_SOCKET" -n </dev/null | unmunge --socket="$MUNGE_SOCKET" >/dev/null ||
  slurm_die "munged does not answer on $MUNGE_SOCKET; see $SLURM_DIR/log/munged.log"

# --- slurm.conf ------------------------------------------------------------------------------
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
# Leave the system 1 GiB (or a tenth on small machines) so that jobs asking for "all of it"
# cannot starve the daemons themselves.
reserve=$((mem_mb / 10 < 1024 ? mem_mb / 10 : 1024))
real_mem=$((mem_mb - reserve))
conf=$(cat <<EOF
# Written by scripts/slurm/start_local.sh for $host; rewritten when the cluster is not running.
ClusterName=kvcanary
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
# A private munged (its own key and socket), so no system munge service is needed or touched.
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$SLURM_DIR/run/slurmctld.pid
SlurmdPidFile=$SLURM_DIR/run/slurmd.pid
SlurmctldLogFile=$SLURM_DIR/log/slurmctld.log
SlurmdLogFile=$SLURM_DIR/log/slurmd.log
# No cgroups: containers and CI machines often have no writable cgroup tree, and a single-user
# node needs no confinement. Processes are tracked by parent pid; tasks are not pinned.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SwitchType=switch/none
# CPUs and memory are the consumable resources, so two 1-CPU array tasks share a 2-CPU node;
# jobs without --mem get an equal share per CPU instead of the whole node.
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=$((real_mem / cpus))
SchedulerType=sched/backfill
# A merge job whose shard failed can never start: cancel it rather than leave it pending for good.
DependencyParameters=kill_invalid_depend
# Jobs keep the submitter's nice value: "nice -n 10 bash examples/slurm_sweep.sh ..." runs the
# sweep niced, as on a shared workstation.
PropagatePrioProcess=1
# The node as configured here wins over what slurmd detects (a cgroup-limited nproc, memory
# reserve), and a node that was down comes back by itself when slurmd registers again.
SlurmdParameters=config_overrides
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
# No mail on this machine; the default /bin/mail is absent and slurmctld logs an error.
MailProg=/bin/true
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=local Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
)
export SLURM_CONF="$SLURM_CONF_FILE"

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if ! pid_alive "$SLURM_DIR/run/slurmctld.pid" slurmctld; then
  # Another cluster (or anything) on our ports: say so now rather than after a failed start.
  port_busy "$CTLD_PORT" && slurm_die "port $CTLD_PORT (slurmctld) is in use: another Slurm? Set KVCANARY_SLURM_PORT"
  pid_alive "$SLURM_DIR/run/slurmd.pid" slurmd || ! port_busy "$SLURMD_PORT" ||
    slurm_die "port $SLURMD_PORT (slurmd) is in use: another Slurm? Set KVCANARY_SLURM_PORT"
  printf '%s\n' "$conf" > "$SLURM_CONF_FILE.tmp"
  mv "$SLURM_CONF_FILE.tmp" "$SLURM_CONF_FILE"
  slurm_log "starting slurmctld ($SLURM_CONF_FILE, port $CTLD_PORT)"
  # Daemonizes itself; -i: a state file from an older slurm or config is ignored, not fatal.
  started=1
  slurmctld -f "$SLURM_CONF_FILE" -i 9>&-
fi
if ! pid_alive "$SLURM_DIR/run/slurmd.pid" slurmd; then
  slurm_log "starting slurmd (node $host, port $SLURMD_PORT)"
  started=1
  slurmd -f "$SLURM_CONF_FILE" 9>&-
fi

# --- wait for the node -----------------------------------------------------------------------
state=""
for ((i = 0; i < WAIT_S * 2; i++)); do
  state=$(sinfo -h -N -o '%T' 2>/dev/null | head -1 || true)
  # A daemon that exits at once (a port in use, a bad line in the config) is reported now,
  # not after the whole wait; the first second leaves it time to write its pid file.
  if ((i >= 2)); then
    for d in slurmctld slurmd; do
      pid_alive "$SLURM_DIR/run/$d.pid" "$d" ||
        slurm_die "$d exited at start: $(grep -E 'fatal|error' "$SLURM_DIR/log/$d.log" 2>/dev/null | tail -1) (log: $SLURM_DIR/log/$d.log)"
    done
  fi
  case $state in
    idle | mixed | allocated | completing) break ;;
    down* | drain* | fail*)
      # Restarted after an unclean stop: slurmctld may remember the node as down. It is back.
      scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
  esac
  sleep 0.5
done
case $state in
  idle | mixed | allocated | completing) ;;
  *) slurm_die "node $host is '${state:-unknown}' after ${WAIT_S} s; see $SLURM_DIR/log/slurmctld.log and slurmd.log" ;;
esac
slurm_log "node $host: $state ($cpus CPUs, $real_mem MB)"
echo "export SLURM_CONF=$SLURM_CONF_FILE"
