#!/usr/bin/env bash
# Stop the one-node SLURM cluster of scripts/slurm/start_cluster.sh: slurmd, slurmctld and munged, by their pid
# files (jobs still running are killed with their slurmd). Its state stays under $SEQREC_SLURM_DIR.
set -uo pipefail
STATE=${SEQREC_SLURM_DIR:-/var/spool/seqrec-slurm}
stop() {  # stop <name> <pid file>
  local pid
  [ -f "$2" ] && pid=$(cat "$2") && kill -0 "$pid" 2>/dev/null || { echo "slurm: $1 was not running"; return; }
  kill "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || { echo "slurm: $1 stopped"; return; }; sleep 0.1; done
  echo "error: slurm: $1 (pid $pid) still runs 10 s after SIGTERM" >&2
  return 1
}
rc=0
stop slurmd "$STATE/slurmd.pid" || rc=1
stop slurmctld "$STATE/slurmctld.pid" || rc=1
stop munged /run/munge/munged.pid || rc=1
exit $rc
