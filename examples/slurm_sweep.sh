#!/bin/bash
# One sweep config as a Slurm job array: by default 8 tasks, task i runs shard i/8 of the matrix
# (cell k belongs to shard k mod 8) into its own results file; a dependent job merges the shards
# and writes the report once every shard has succeeded.
#
#   bash examples/slurm_sweep.sh configs/v1.toml       # submits the array and the merge+report job
#   sbatch examples/slurm_sweep.sh configs/v1.toml     # the array alone (merge by hand afterwards)
#
# Sizing: the #SBATCH lines below are for a real cluster (8 tasks × 8 CPUs × 16 GB). Options
# after the config go to the array's sbatch and override them, e.g. two 1-CPU shards on a
# 2-core machine (scripts/slurm/start_local.sh starts such a single-node cluster):
#   bash examples/slurm_sweep.sh configs/smoke.toml --array=0-1 --cpus-per-task=1 --mem=4G --time=2:00:00
# The shard count is the array's size and the threads per shard its --cpus-per-task.
# Slurm's own input variables (SBATCH_PARTITION, SBATCH_ACCOUNT, ...) apply to both jobs.
#
# By hand, the merge job is:
#   JOBID=$(sbatch --parsable examples/slurm_sweep.sh configs/v1.toml)
#   sbatch --dependency=afterok:$JOBID --wrap \
#     "build/bin/kvcanary merge --out results/all.jsonl results/shard-*.jsonl && build/bin/kvcanary report results/all.jsonl --out report"
#
# Resuming: submit the same array again, with the same options. Each shard reopens its
# results/shard-$i.jsonl, skips the (cell, sample) pairs already there and runs the rest; a row
# is one fdatasync'd line, so a task killed mid-row (time limit, preemption, node failure)
# leaves at most one torn last line, which is ignored and rewritten. Shards that had finished
# exit in seconds. To re-run only some indices (sbatch --array=3,5 ...) keep the shard count
# fixed — SLURM_ARRAY_TASK_COUNT would be 2:
#   sbatch --array=3,5 --export=ALL,SHARDS=8 examples/slurm_sweep.sh configs/v1.toml
# Never change the config or the shard count between runs into the same files: rows are keyed
# by cell id, shard i of 4 is not shard i of 8, and rows of other weights under the same model
# label are refused.
#
# Run from the repository root (data = "data" and the results paths are relative to it), after
# building build/bin/kvcanary. Slurm does not create the log directory: it is made below before
# submitting; with a bare sbatch, mkdir -p logs first. Override with the environment:
# KVCANARY (binary), RESULTS (shard directory), REPORT (report directory), LOGS (log directory,
# honoured when submitting through bash).
#
#SBATCH --job-name=kvcanary-sweep
#SBATCH --array=0-7
#SBATCH --cpus-per-task=8
#SBATCH --mem=16G
#SBATCH --time=24:00:00
#SBATCH --output=logs/sweep-%A_%a.out

set -euo pipefail

CONFIG=${1:-configs/v1.toml}
KVCANARY=${KVCANARY:-build/bin/kvcanary}
RESULTS=${RESULTS:-results}
REPORT=${REPORT:-report}
LOGS=${LOGS:-logs}

if [[ -z "${SLURM_ARRAY_TASK_ID:-}" ]]; then
  # Not inside the array: submit it, then the merge + report job that waits for all of it.
  # Checked here, where a mistake is one line on the terminal, not eight failed jobs' logs.
  [[ -f $CONFIG ]] || { echo "slurm_sweep.sh: error: no config file '$CONFIG'" >&2; exit 2; }
  command -v "$KVCANARY" >/dev/null || { echo "slurm_sweep.sh: error: KVCANARY=$KVCANARY is not an executable (build first, or set KVCANARY)" >&2; exit 2; }
  shift $(($# ? 1 : 0))
  mkdir -p "$LOGS" "$RESULTS"
  if ! JOBID=$(sbatch --parsable --output="$LOGS/sweep-%A_%a.out" "$@" "$0" "$CONFIG"); then
    # Without a slurm.conf sbatch's own words are about a failed DNS SRV lookup.
    [[ -n ${SLURM_CONF:-} || -e /etc/slurm/slurm.conf ]] ||
      echo "slurm_sweep.sh: SLURM_CONF is not set and there is no /etc/slurm/slurm.conf; for the local cluster: eval \"\$(bash scripts/slurm/start_local.sh)\"" >&2
    exit 2
  fi
  JOBID=${JOBID%%;*}  # --parsable prints "id;cluster" on multi-cluster setups
  # %q: the command line is rebuilt by the job's shell, so paths with spaces stay one word.
  merge=$(printf '%q merge --out %q %q/shard-*.jsonl && %q report %q --out %q' \
    "$KVCANARY" "$RESULTS/all.jsonl" "$RESULTS" "$KVCANARY" "$RESULTS/all.jsonl" "$REPORT")
  MERGEID=$(sbatch --parsable --dependency=afterok:"$JOBID" --job-name=kvcanary-report \
    --output="$LOGS/report-%j.out" --cpus-per-task=1 --time=00:30:00 --wrap "$merge")
  MERGEID=${MERGEID%%;*}
  echo "submitted array $JOBID and its merge+report job $MERGEID"
  exit 0
fi

SHARDS=${SHARDS:-$SLURM_ARRAY_TASK_COUNT}
mkdir -p "$RESULTS"
exec "$KVCANARY" sweep "$CONFIG" \
  --out "$RESULTS/shard-$SLURM_ARRAY_TASK_ID.jsonl" \
  --shard "$SLURM_ARRAY_TASK_ID/$SHARDS" \
  --threads "${SLURM_CPUS_PER_TASK:-1}" \
  --progress
