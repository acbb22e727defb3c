#!/usr/bin/env bash
# examples/slurm_sweep.sh on a real Slurm: starts a private single-node cluster under the build
# directory (scripts/slurm/start_local.sh, its own ports and munge key, so a cluster already
# running on this machine is neither used nor disturbed), submits a tiny sweep as a 2-shard
# array of 1-CPU tasks plus the dependent merge+report job, waits for both, and checks that
# the merged rows equal a direct run's, field for field except `latency_s` (wall time).
#
#   bash tests/scripts/test_slurm_sweep.sh KVCANARY_CLI BUILD_DIR
#
# Skipped (exit 77, "skipped: <why>") only when not root: slurmd starts jobs as their submitter
# only as root, and installing slurm-wlm needs root. As root every failure is a failure,
# including a cluster that does not start.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLI=${1:?usage: test_slurm_sweep.sh KVCANARY_CLI BUILD_DIR}
BUILD=${2:?usage: test_slurm_sweep.sh KVCANARY_CLI BUILD_DIR}
BUILD="$(cd "$BUILD" && pwd)"
[[ -x $CLI ]] || { echo "FAIL: no kvcanary binary at $CLI" >&2; exit 1; }
TIMEOUT_S=${KVCANARY_SLURM_TEST_TIMEOUT_S:-180}

if [[ $(id -u) -ne 0 ]]; then
  echo "skipped: not root — slurmd must run as root to start jobs, and installing slurm-wlm/munge needs root (CI runs as root)"
  exit 77
fi

# Run from inside a Slurm job (ctest in an allocation), SLURM_ARRAY_TASK_ID and friends would make
# slurm_sweep.sh think it is an array task, and SBATCH_* would reach our sbatch: the test's
# cluster and options only.
for v in ${!SLURM_@} ${!SBATCH_@}; do unset "$v"; done

W="$BUILD/slurm-test"  # short: Unix socket paths of the cluster live under it
cluster="$W/cluster"
export KVCANARY_SLURM_DIR="$cluster"
fail() {
  echo "FAIL: $*" >&2
  for f in "$W"/run/logs/*.out "$cluster"/log/slurmctld.log "$cluster"/log/slurmd.log; do
    [[ -f $f ]] && { echo "--- $f (last 30 lines)" >&2; tail -30 "$f" >&2; }
  done
  exit 1
}

# A leftover cluster of an interrupted run (same directory) is stopped, then everything is new.
bash "$ROOT/scripts/slurm/stop_local.sh" --purge
rm -rf "$W"
mkdir -p "$W/model" "$W/run"

# Two free consecutive ports (slurmctld, slurmd): the default cluster may hold 6817/6818. Below
# Linux's ephemeral range (32768 up), where outgoing connections take theirs.
port=""
for _ in $(seq 50); do
  p=$((20000 + RANDOM % 12000))
  (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null && continue
  (exec 3<>"/dev/tcp/127.0.0.1/$((p + 1))") 2>/dev/null && continue
  port=$p
  break
done
[[ -n $port ]] || fail "no two free consecutive ports found"
export KVCANARY_SLURM_PORT=$port

trap 'bash "$ROOT/scripts/slurm/stop_local.sh" >/dev/null 2>&1 || true' EXIT
t0=$(date +%s.%N)
env_line=$(bash "$ROOT/scripts/slurm/start_local.sh") || fail "the local cluster did not start"
eval "$env_line"
t1=$(date +%s.%N)
[[ $SLURM_CONF == "$cluster/slurm.conf" ]] || fail "start_local.sh exported SLURM_CONF=$SLURM_CONF"

# The tiny random Llama as a chat model (tests/run/sweep_test_support.hpp does the same in C++):
# byte tokens make prompts long, so its 256 positions are raised.
src="$ROOT/tests/data/tiny/llama_gqa_untied"
sed 's/"max_position_embeddings": 256,/"max_position_embeddings": 16384,/' "$src/config.json" > "$W/model/config.json"
grep -q '"max_position_embeddings": 16384,' "$W/model/config.json" || fail "could not raise max_position_embeddings in $src/config.json"
cp "$src/model.safetensors" "$W/model/"
cp "$ROOT/tests/data/tiny/byte_tokenizer.json" "$W/model/tokenizer.json"
cp "$ROOT/tests/data/chat/smollm2.tokenizer_config.json" "$W/model/tokenizer_config.json"
cat > "$W/text.txt" <<'EOF'
A job array runs the same script many times; each task is told its index and the count, and
picks its part of the work from them. When every part has finished, a job that depends on all
of them joins the parts. If a task dies, it is submitted again and carries on where it stopped.
EOF

# 3 compressor cells × 2 tasks = 6 cells, 3 per shard; functional and perplexity rows, and a
# decode-mode eviction and a quantizer so that compressed caches are compared too.
cat > "$W/tiny.toml" <<EOF
[sweep]
name = "slurm-test"
batch = 3

[model]
dir = "$W/model"
label = "tiny"

[[compressors]]
name = "full"

[[compressors]]
name = "streamingllm"
budgets = [0.5]
mode = "decode"

[[compressors]]
name = "kivi"
budgets = [0.125]
params = { residual = 32 }

[[tasks]]
type = "seed_tool_calls"
file = "$ROOT/configs/data/seed_tool_calls.jsonl"
limit = 3
max_new_tokens = 8

[[tasks]]
type = "perplexity"
file = "$W/text.txt"
spans = 2
context = 60
continuation = 12
EOF

# Submitted from the scratch directory: logs/ and the results land there. Same as a user's
# command line, with the shard layout for this node passed through to sbatch.
cd "$W/run"
submitted=$(KVCANARY="$CLI" RESULTS="$W/run/results" REPORT="$W/run/report" \
  bash "$ROOT/examples/slurm_sweep.sh" "$W/tiny.toml" --array=0-1 --cpus-per-task=1 --mem=1G --time=00:10:00) ||
  fail "slurm_sweep.sh did not submit"
echo "$submitted"
[[ $submitted =~ ^submitted\ array\ ([0-9]+)\ and\ its\ merge\+report\ job\ ([0-9]+)$ ]] ||
  fail "unexpected submit output: $submitted"
array=${BASH_REMATCH[1]}
merge=${BASH_REMATCH[2]}

# Meanwhile the same config without Slurm, one thread like each shard.
"$CLI" sweep "$W/tiny.toml" --out "$W/direct.jsonl" --threads 1 > "$W/direct.summary" 2> "$W/direct.err" ||
  { cat "$W/direct.err" >&2; fail "the direct sweep failed"; }

# Wait until neither job is in the queue; a merge job whose dependency can never be met stays
# pending forever, so that ends the wait too.
deadline=$(($(date +%s) + TIMEOUT_S))
while :; do
  queued=$(squeue -h -j "$array,$merge" -o '%i %T %r' 2>/dev/null || true)
  [[ -z $queued ]] && break
  grep -q DependencyNeverSatisfied <<<"$queued" && fail "a shard failed, the merge job cannot start: $queued"
  (($(date +%s) < deadline)) || fail "jobs still queued after ${TIMEOUT_S} s: $queued"
  sleep 0.5
done
t2=$(date +%s.%N)

# Every array task and the merge job completed (slurmctld keeps finished jobs for MinJobAge).
states=$(scontrol -o show job "$array" | grep -o 'JobState=[A-Z_]*' | tr '\n' ' ')
[[ $states == "JobState=COMPLETED JobState=COMPLETED " ]] || fail "array $array (2 tasks): $states"
scontrol -o show job "$merge" | grep -q 'JobState=COMPLETED' || fail "merge job $merge: $(scontrol -o show job "$merge")"
for i in 0 1; do
  grep -q '"rows_written"' "$W/run/logs/sweep-${array}_$i.out" 2>/dev/null || fail "shard $i printed no summary line"
done
[[ -s $W/run/results/all.jsonl ]] || fail "no merged results/all.jsonl"
[[ -s $W/run/report/RESULTS.md ]] || fail "no report/RESULTS.md"

# The rows: same set of (cell_id, sample_id), and each row equal to the direct run's but for
# latency_s, the only field that depends on when and beside what a sample ran.
python3 - "$W/run/results/all.jsonl" "$W/direct.jsonl" "$W/run/results/shard-0.jsonl" "$W/run/results/shard-1.jsonl" <<'PY' || fail "merged rows differ from the direct run's"
import json, sys
def rows(path):
    out = {}
    for line in open(path):
        r = json.loads(line)
        r.pop("latency_s")
        out[(r["cell_id"], r["sample_id"])] = r
    return out
merged, direct, s0, s1 = (rows(p) for p in sys.argv[1:5])
n_expected = 3 * 3 + 3 * 2  # 3 cells × 3 tool calls + 3 cells × 2 perplexity spans
assert len(direct) == n_expected, f"direct run: {len(direct)} rows, expected {n_expected}"
assert len(s0) and len(s1) and not (s0.keys() & s1.keys()), "shards are empty or overlap"
cells0 = {k[0] for k in s0}; cells1 = {k[0] for k in s1}
assert len(cells0) == 3 and len(cells1) == 3, f"cells per shard: {len(cells0)}, {len(cells1)}"
if merged.keys() != direct.keys():
    sys.exit(f"keys differ: only merged {sorted(merged.keys() - direct.keys())}, only direct {sorted(direct.keys() - merged.keys())}")
bad = [k for k in direct if merged[k] != direct[k]]
for k in bad[:3]:
    a, b = merged[k], direct[k]
    print(k, {f: (a.get(f), b.get(f)) for f in set(a) | set(b) if a.get(f) != b.get(f)}, file=sys.stderr)
sys.exit(f"{len(bad)} of {len(direct)} rows differ" if bad else 0)
PY

awk -v a="$t0" -v b="$t1" -v c="$t2" -v n="$(wc -l < "$W/direct.jsonl")" \
  'BEGIN { printf "slurm sweep test: cluster up in %.1f s, submit to merged report %.1f s, %d rows equal\n", b - a, c - b, n }'
# Success: the cluster and its directory go. On failure the trap stops the cluster but leaves
# the directory (logs, rows) for a look.
trap - EXIT
bash "$ROOT/scripts/slurm/stop_local.sh" --purge >/dev/null
rm -rf "$W"
