#!/bin/bash
# A Slurm job array that classifies one folder in 8 pieces: task i runs
# `res2net predict --shard i/8` and writes its own results file. Requeued
# or resubmitted tasks pick up where they stopped (--resume).
#
#   sbatch deploy/batch/slurm.sh /shared/photos /shared/model.pth /shared/results
#   cat /shared/results/part-*.jsonl > results.jsonl      # when all are done
#
#SBATCH --job-name=res2net
#SBATCH --array=0-7
#SBATCH --cpus-per-task=2
#SBATCH --mem=512M
#SBATCH --time=04:00:00
#SBATCH --requeue
#SBATCH --output=res2net-%A_%a.log
set -euo pipefail

photos=${1:?usage: sbatch slurm.sh PHOTOS MODEL.pth RESULTS_DIR}
weights=${2:?usage: sbatch slurm.sh PHOTOS MODEL.pth RESULTS_DIR}
results=${3:?usage: sbatch slurm.sh PHOTOS MODEL.pth RESULTS_DIR}
shards=$((SLURM_ARRAY_TASK_MAX + 1))   # the array is 0..N-1
mkdir -p "$results"

# srun passes SIGTERM on (scancel, preemption): predict writes what it has
# and exits 143, and the requeued task resumes from it.
exec srun res2net predict "$photos" \
	--shard "$SLURM_ARRAY_TASK_ID/$shards" \
	--weights "$weights" --offline --quiet \
	--threads "$SLURM_CPUS_PER_TASK" \
	--resume -o "$results/part-$SLURM_ARRAY_TASK_ID.jsonl"
