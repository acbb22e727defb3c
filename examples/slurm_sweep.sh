#!/bin/bash
# One sweep config as a Slurm job array: 8 tasks, task i runs shard i/8 of the matrix (cell k
# belongs to shard k mod 8) into its own results file; a dependent job merges the shards and
# writes the report once every shard has succeeded.
#
#   bash examples/slurm_sweep.sh configs/v1.toml       # submits the array and the merge+report job
#   sbatch examples/slurm_sweep.sh configs/v1.toml     # the array alone (merge by hand afterwards)
#
# By hand, the merge job is:
#   JOBID=$(sbatch --parsable examples/slurm_sweep.sh configs/v1.toml)
#   sbatch --dependency=afterok:$JOBID --wrap \
#     "build/bin/kvcanary merge --out results/all.jsonl results/shard-*.jsonl && build/bin/kvcanary report results/all.jsonl --out report"
#
# Resuming: submit the same array again. Each shard reopens its results/shard-$i.jsonl, skips
# the (cell, sample) pairs already there and runs the rest; a row is one fdatasync'd line, so a
# task killed mid-row (time limit, preemption, node failure) leaves at most one torn last line,
# which is ignored and rewritten. Shards that had finished exit in seconds. To re-run only some
# indices (sbatch --array=3,5 ...) keep the shard count fixed — SLURM_ARRAY_TASK_COUNT would be 2:
#   sbatch --array=3,5 --export=ALL,SHARDS=8 examples/slurm_sweep.sh configs/v1.toml
# Never change the config between runs into the same files: rows are keyed by cell id, and rows
# of other weights under the same model label are refused.
#
# Run from the repository root (data = "data" and the results paths are relative to it), after
# building build/bin/kvcanary. Slurm does not create the log directory: logs/ is made below
# before submitting; with a bare sbatch, mkdir -p logs first. Override with the environment:
# KVCANARY (binary), RESULTS (shard directory), REPORT (report directory).
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

if [[ -z "${SLURM_ARRAY_TASK_ID:-}" ]]; then
  # Not inside the array: submit it, then the merge + report job that waits for all of it.
  mkdir -p logs "$RESULTS"
  JOBID=$(sbatch --parsable "$0" "$CONFIG")
  JOBID=${JOBID%%;*}  # --parsable prints "id;cluster" on multi-cluster setups
  sbatch --dependency=afterok:"$JOBID" --job-name=kvcanary-report --output=logs/report-%j.out \
    --cpus-per-task=1 --time=00:30:00 \
    --wrap "$KVCANARY merge --out $RESULTS/all.jsonl $RESULTS/shard-*.jsonl && $KVCANARY report $RESULTS/all.jsonl --out $REPORT"
  echo "submitted array $JOBID and its merge+report job"
  exit 0
fi

SHARDS=${SHARDS:-$SLURM_ARRAY_TASK_COUNT}
mkdir -p "$RESULTS"
exec "$KVCANARY" sweep "$CONFIG" \
  --out "$RESULTS/shard-$SLURM_ARRAY_TASK_ID.jsonl" \
  --shard "$SLURM_ARRAY_TASK_ID/$SHARDS" \
  --threads "${SLURM_CPUS_PER_TASK:-1}" \
  --progress
