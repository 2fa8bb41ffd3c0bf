#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (Debian's slurm-wlm 22.05 and munge), for the tests that need a
# real SLURM (tests/test_slurm.py) and for trying sweeps by hand. Idempotent: run it again and it only checks.
#   bash scripts/slurm/start_cluster.sh      # as root; installs slurm-wlm and munge with apt-get if missing
#   bash scripts/slurm/stop_cluster.sh       # stops the daemons it started
# Partitions: debug (default) and urgent (higher priority tier: its jobs preempt debug's, which are requeued).
# State, logs and pid files live under $SEQREC_SLURM_DIR (default /var/spool/seqrec-slurm); the config is
# /etc/slurm/slurm.conf (where sinfo, sbatch and the daemons look), written only if absent or written by this script.
# Prints one line: "slurm: up ..." or "error: ..." (exit status 1).
set -uo pipefail

STATE=${SEQREC_SLURM_DIR:-/var/spool/seqrec-slurm}
CONF=/etc/slurm/slurm.conf
MARK="# written by seqrec scripts/slurm/start_cluster.sh"
HOST=$(hostname -s)

fail() { echo "error: slurm: $*" >&2; exit 1; }

CPUS=$(nproc)
MEM_MB=$(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo)
REAL_MB=$(( MEM_MB / 2 ))        # half the memory: slurmd drains a node that has less than RealMemory
[ "$REAL_MB" -ge 512 ] || REAL_MB=512
write_conf() {
cat <<CONF
$MARK
# A one-node cluster for tests: this host runs slurmctld and slurmd; jobs run as the user who submits them.
ClusterName=seqrec
MpiDefault=none
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job waits cred_expire seconds before it starts again (default 120)
AuthInfo=cred_expire=10
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldPort=6817
SlurmdPort=6818
# no cgroups in a container: processes tracked through /proc, no task binding
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# schedule every few seconds (default: a minute between full passes), so a requeued job starts soon
SchedulerParameters=sched_interval=2,bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
# requeue: batch jobs may be requeued (scontrol requeue, preemption); SIGTERM, then SIGKILL 10 s later
JobRequeue=1
KillWait=10
MinJobAge=300
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$REAL_MB State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP PriorityTier=1 PreemptMode=REQUEUE
PartitionName=urgent Nodes=$HOST Default=NO MaxTime=INFINITE State=UP PriorityTier=2 PreemptMode=OFF
CONF
}

node_state() { sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1; }

if command -v sinfo >/dev/null 2>&1 && [ "$(write_conf)" = "$(cat "$CONF" 2>/dev/null)" ] \
    && [[ "$(node_state)" =~ ^(idle|mixed|allocated|completing) ]]; then
  echo "slurm: up already (node $HOST $(node_state), partitions $(sinfo -h -o %P | tr '\n' ' ')config $CONF)"
  exit 0
fi

[ "$(id -u)" = 0 ] || fail "start_cluster.sh must run as root (it installs packages and starts daemons); run it with sudo"

# 1. packages
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sinfo >/dev/null; then
  command -v apt-get >/dev/null || fail "slurm-wlm and munge are not installed and there is no apt-get to install them"
  echo "slurm: installing slurm-wlm and munge with apt-get (a minute)"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends slurm-wlm munge; } >"/tmp/seqrec-slurm-apt.log" 2>&1 \
    || fail "apt-get install slurm-wlm munge failed (see /tmp/seqrec-slurm-apt.log: $(tail -1 /tmp/seqrec-slurm-apt.log))"
fi

# 2. config
if [ -f "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
  fail "$CONF exists and was not written by this script (a real cluster's config?); move it away to start the one-node cluster"
fi
mkdir -p "$STATE/ctld" "$STATE/d" "$STATE/log" /etc/slurm /run/munge || fail "cannot create $STATE"
write_conf >"$CONF.new"
if ! cmp -s "$CONF.new" "$CONF"; then
  mv "$CONF.new" "$CONF"
  CHANGED=1
else
  rm -f "$CONF.new"
  CHANGED=0
fi

# 3. munge
if [ ! -s /etc/munge/munge.key ]; then
  mkdir -p /etc/munge
  dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none || fail "cannot write /etc/munge/munge.key"
fi
chown -R munge:munge /etc/munge /run/munge 2>/dev/null
chmod 700 /etc/munge; chmod 400 /etc/munge/munge.key
mkdir -p /var/lib/munge /var/log/munge && chown munge:munge /var/lib/munge /var/log/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  runuser -u munge -- /usr/sbin/munged --force >"$STATE/log/munged.out" 2>&1 \
    || fail "munged did not start: $(tail -1 "$STATE/log/munged.out")"
  for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || fail "munged started but does not answer (see /var/log/munge/munged.log)"
fi

# 4. slurmctld and slurmd (as daemons: no systemd here)
running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
if [ "$CHANGED" = 1 ]; then  # a new config: restart what runs with the old one
  for pid in "$STATE/slurmd.pid" "$STATE/slurmctld.pid"; do
    running "$pid" && kill "$(cat "$pid")" && for _ in $(seq 50); do running "$pid" || break; sleep 0.1; done
  done
fi
if ! running "$STATE/slurmctld.pid"; then
  /usr/sbin/slurmctld || fail "slurmctld did not start: $(tail -1 "$STATE/log/slurmctld.log" 2>/dev/null)"
fi
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q "is UP" && break; sleep 0.1; done
scontrol ping 2>/dev/null | grep -q "is UP" || fail "slurmctld does not answer: $(tail -1 "$STATE/log/slurmctld.log" 2>/dev/null)"
if ! running "$STATE/slurmd.pid"; then
  /usr/sbin/slurmd || fail "slurmd did not start: $(tail -1 "$STATE/log/slurmd.log" 2>/dev/null)"
fi

# 5. the node idle
for _ in $(seq 150); do
  state=$(node_state)
  [[ "$state" =~ ^(idle|mixed|allocated) ]] && break
  [[ "$state" =~ ^(down|drain) ]] && scontrol update nodename="$HOST" state=resume >/dev/null 2>&1
  sleep 0.2
done
state=$(node_state)
[[ "$state" =~ ^(idle|mixed|allocated) ]] \
  || fail "node $HOST is '${state:-unknown}', not idle, after 30 s (see $STATE/log/slurmd.log: $(tail -1 "$STATE/log/slurmd.log" 2>/dev/null))"
echo "slurm: up (node $HOST $state, $CPUS CPUs, partitions $(sinfo -h -o %P | tr '\n' ' ')state $STATE, config $CONF)"
