#!/bin/bash
# test-policy.sh — [policy] the system-bus policy (data/org.bluegreen.Agent1.conf)
# against the real agent on a private system-like bus.
#
# The bus is a dbus-daemon with a minimal system-bus configuration (the
# stock default-deny rules of /usr/share/dbus-1/system.conf, which keep
# replies and signals flowing) that includes the project's policy file as
# it is shipped. bluegreend needs the systemd manager on the bus it serves,
# so that dbus-daemon is the API bus of a test host's user manager
# (tools/bg-host): a drop-in replaces the host's session bus with it, and
# the manager reconnects to it as to any bus. The agent runs --system with
# DBUS_SYSTEM_BUS_ADDRESS pointing there, so it owns its name and serves
# its objects exactly as on a real system bus.
#
# Callers: root; `nobody` (setpriv, no groups); a throwaway user in the
# `bluegreen` group (the group and the user are created here if missing
# and removed afterwards). Control calls carry arguments the agent refuses
# (a bad version, color or mode, a phase that allows nothing), so a caller
# the bus lets through gets the agent's own org.bluegreen.Error.* answer,
# and nothing moves even if the policy were wrong.
#
# Needs root (mount namespaces, cgroups, setpriv, useradd).
#
# SPDX-License-Identifier: LGPL-2.1-or-later

set -u
TOP_SRCDIR=${BG_TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
TOP_BUILDDIR=${BG_TOP_BUILDDIR:-$PWD}
AGENT="$TOP_BUILDDIR/bluegreend"
BG_HOST="$TOP_SRCDIR/tools/bg-host"
POLICY="$TOP_SRCDIR/data/org.bluegreen.Agent1.conf"
T=${BG_TEST_TMPDIR:-$(mktemp -d)}
cd "$T" || exit 99

n=0
failed=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
skip_all () { echo "1..0 # SKIP $1"; exit 0; }

[ "$(id -u)" -eq 0 ] || skip_all "needs root"
for c in dbus-daemon setpriv gdbus useradd groupadd userdel groupdel; do
  command -v "$c" >/dev/null 2>&1 || skip_all "$c not found"
done
[ -x "$AGENT" ] || skip_all "bluegreend not built"
id nobody >/dev/null 2>&1 && getent group nogroup >/dev/null || skip_all "no nobody/nogroup"

HOST=pol
export BG_HOSTS_DIR="$T/h"
agent_pid=""
created_group=""
member=""

cleanup () {
  if [ -n "$agent_pid" ]; then
    kill -TERM "$agent_pid" 2>/dev/null
    wait "$agent_pid" 2>/dev/null
  fi
  "$BG_HOST" stop "$HOST" >/dev/null 2>&1
  [ -n "$member" ] && userdel "$member" 2>/dev/null
  [ -n "$created_group" ] && groupdel bluegreen 2>/dev/null
}
trap cleanup EXIT
show_logs () {
  echo "# agent log:"; sed 's/^/#   /' "$T/agent.log" 2>/dev/null
  echo "# bus log:"; sed 's/^/#   /' "$BG_HOSTS_DIR/$HOST/logs/dbus.log" 2>/dev/null
}
bail () { echo "Bail out! $1"; show_logs; exit 1; }

# ---- the bluegreen group and a member ------------------------------------
if ! getent group bluegreen >/dev/null; then
  groupadd --system bluegreen || bail "cannot create group bluegreen"
  created_group=1
fi
member="bgpol$$"
useradd --system --no-create-home --gid nogroup --groups bluegreen \
  --shell /usr/sbin/nologin "$member" || { member=""; bail "cannot create user"; }

# ---- the bus -------------------------------------------------------------
# The stock system-bus rules, plus what the host's own manager needs (own
# org.freedesktop.systemd1, be called by root), plus the project's file.
cat >"$T/system-like.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:tmpdir=$T</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
  </policy>
  <policy user="root">
    <allow own="org.freedesktop.systemd1"/>
    <allow send_destination="org.freedesktop.systemd1"/>
  </policy>
  <include>$POLICY</include>
</busconfig>
EOF

"$BG_HOST" start "$HOST" >"$T/host.env" 2>"$T/host.err" || { cat "$T/host.err" | sed 's/^/# /'; bail "test host did not start"; }
. "$T/host.env"
BUS=$BG_HOST_BUS
unitdir="$BG_HOST_DIR/home/.config/systemd/user"
mkdir -p "$unitdir/dbus.service.d"
cat >"$unitdir/dbus.service.d/50-system-like.conf" <<EOF
[Service]
ExecStart=
ExecStart=/usr/bin/dbus-daemon --config-file=$T/system-like.conf --address=systemd: --nofork --nopidfile
StandardOutput=append:$BG_HOST_DIR/logs/dbus.log
StandardError=inherit
EOF
"$BG_HOST" exec "$HOST" -- systemctl --user daemon-reload || bail "daemon-reload failed"
"$BG_HOST" exec "$HOST" -- systemctl --user restart dbus.service || bail "restarting the bus failed"
gdbus wait --address "$BUS" --timeout 10 org.freedesktop.systemd1 ||
  bail "the manager did not come back on the system-like bus"

# The callers reach the socket through the test's (0700) directories.
chmod o+x "$T" "$BG_HOSTS_DIR" "$BG_HOST_DIR" "$BG_HOST_DIR/runtime"

bus_pid=$(gdbus call --address "$BUS" --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
  --method org.freedesktop.DBus.GetConnectionUnixProcessID org.freedesktop.DBus | sed -n 's/^(uint32 \([0-9]*\),)$/\1/p')
if tr '\0' ' ' <"/proc/$bus_pid/cmdline" 2>/dev/null | grep -qF -- "--config-file=$T/system-like.conf"; then
  ok "policy: the bus runs with the system-like config that includes the project's policy"
else
  not_ok "policy: the bus runs with the system-like config that includes the project's policy"
fi

# ---- the agent -----------------------------------------------------------
mkdir -p "$T/jobs" "$T/state"
printf '[Job]\nExecStart=/bin/true %%v\nInputTopics=alpha-in\n' >"$T/jobs/alpha.job"
cat >"$T/agent.conf" <<EOF
[Agent]
HostId=pol
StateDirectory=$T/state
JobsDirectory=$T/jobs
[Kafka]
BootstrapServers=127.0.0.1:1
EOF
DBUS_SYSTEM_BUS_ADDRESS=$BUS "$AGENT" --system --config="$T/agent.conf" >"$T/agent.log" 2>&1 &
agent_pid=$!
gdbus wait --address "$BUS" --timeout 15 org.bluegreen.Agent1 || bail "the agent did not take its name"

owner_uid=$(gdbus call --address "$BUS" --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
  --method org.freedesktop.DBus.GetConnectionUnixUser org.bluegreen.Agent1 | sed -n 's/^(uint32 \([0-9]*\),)$/\1/p')
if [ "$owner_uid" = 0 ]; then ok "policy: root owns org.bluegreen.Agent1"
else not_ok "policy: root owns org.bluegreen.Agent1 (owner uid '$owner_uid')"; fi

# ---- calls ---------------------------------------------------------------
AGENT_PATH=/org/bluegreen/Agent1
JOB_PATH=/org/bluegreen/Agent1/job/alpha
SLOT_PATH=/org/bluegreen/Agent1/job/alpha/blue

# call WHO PATH METHOD ARGS...: runs gdbus as WHO (root, nobody, member);
# the reply (or error) ends up in $out, the status in $rc.
call () {
  local who=$1 path=$2 method=$3; shift 3
  local as=()
  case "$who" in
    root) ;;
    nobody) as=(setpriv --reuid=nobody --regid=nogroup --clear-groups) ;;
    member) as=(setpriv --reuid="$member" --regid=nogroup --init-groups) ;;
  esac
  out=$("${as[@]}" gdbus call --address "$BUS" --timeout 10 --dest org.bluegreen.Agent1 \
          --object-path "$path" --method "$method" "$@" 2>&1)
  rc=$?
}
bus_denied () { # the bus refused: the message never reached the agent
  [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'GDBus.Error:org.freedesktop.DBus.Error.AccessDenied: Rejected send message'
}
reached_agent () { # a success, or the agent's own error
  [ $rc -eq 0 ] || printf '%s' "$out" | grep -q 'GDBus.Error:org\.bluegreen\.Error\.'
}
expect () { # expect denied|reached|agent-denied WHO PATH METHOD ARGS...
  local want=$1 who=$2 path=$3 method=$4; shift 4
  local name="policy: $who ${method##*.} ($path) is $want"
  call "$who" "$path" "$method" "$@"
  local good=1
  case "$want" in
    denied) bus_denied || good="" ;;
    reached) reached_agent || good="" ;;
    agent-denied) printf '%s' "$out" | grep -q 'GDBus.Error:org\.bluegreen\.Error\.AccessDenied' || good="" ;;
  esac
  if [ -n "$good" ]; then ok "$name"; else not_ok "$name"; echo "# rc=$rc: $out"; fi
}

# Every control method, with arguments the agent refuses or that are
# harmless (Reload re-reads the same files).
control_calls=(
  "$AGENT_PATH|org.bluegreen.Agent1.Reload"
  "$JOB_PATH|org.bluegreen.Job1.Deploy|bad/version|@a{sv} {}"
  "$JOB_PATH|org.bluegreen.Job1.Retire|purple"
  "$JOB_PATH|org.bluegreen.Job1.SetSinkMode|blue|bogus"
  "$JOB_PATH|org.bluegreen.Job1.Cutover|@a{sv} {}"
  "$JOB_PATH|org.bluegreen.Job1.Rollback|@a{sv} {}"
  "$JOB_PATH|org.bluegreen.Job1.Abort"
  "$JOB_PATH|org.bluegreen.Job1.EvictHost|Not A Host"
)
run_controls () { # run_controls WANT WHO
  local entry
  for entry in "${control_calls[@]}"; do
    IFS='|' read -r -a f <<<"$entry"
    expect "$1" "$2" "${f[@]}"
  done
}

run_controls denied nobody
run_controls reached root
run_controls reached member

# Reading is open: properties, introspection, the object list, GetJob.
expect reached nobody "$AGENT_PATH" org.freedesktop.DBus.Properties.Get org.bluegreen.Agent1 HostId
if printf '%s' "$out" | grep -q "'pol'"; then ok "policy: nobody reads HostId's value"; else not_ok "policy: nobody reads HostId's value"; echo "# $out"; fi
expect reached nobody "$JOB_PATH" org.freedesktop.DBus.Properties.GetAll org.bluegreen.Job1
expect reached nobody "$SLOT_PATH" org.freedesktop.DBus.Properties.GetAll org.bluegreen.Slot1
expect reached nobody "$JOB_PATH" org.freedesktop.DBus.Introspectable.Introspect
if printf '%s' "$out" | grep -q 'org.bluegreen.Job1'; then ok "policy: nobody's introspection shows Job1"; else not_ok "policy: nobody's introspection shows Job1"; fi
expect reached nobody "$AGENT_PATH" org.freedesktop.DBus.ObjectManager.GetManagedObjects
expect reached nobody "$AGENT_PATH" org.bluegreen.Agent1.GetJob alpha
expect reached nobody "$AGENT_PATH" org.freedesktop.DBus.Peer.Ping
# ... but not writing, and not a method nobody opened.
expect denied nobody "$JOB_PATH" org.freedesktop.DBus.Properties.Set org.bluegreen.Job1 Phase '<"live">'
expect denied nobody "$JOB_PATH" org.bluegreen.Job1.Frobnicate

# Job-facing methods pass the bus; the agent's caller check refuses
# anyone outside the slot's unit.
expect agent-denied nobody "$SLOT_PATH" org.bluegreen.Slot1.GetSteering
expect agent-denied nobody "$SLOT_PATH" org.bluegreen.Slot1.ReportProgress '@a(six) []' 0 0 0 0
expect agent-denied nobody "$SLOT_PATH" org.bluegreen.Slot1.SavepointDone /nonexistent false ''
expect agent-denied nobody "$SLOT_PATH" org.bluegreen.Slot1.PlanArmed x true ''
expect agent-denied nobody "$SLOT_PATH" org.bluegreen.Slot1.PlanArmedAt x true '' '@a(six) []'
expect agent-denied nobody "$SLOT_PATH" org.bluegreen.Slot1.ReportDelivered '@a(six) []'

# Only root owns the name: neither nobody nor a group member may take it
# (the bus refuses before it looks at the current owner).
own () { # own WHO: RequestName org.bluegreen.Agent1 as WHO
  local as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
  [ "$1" = member ] && as=(setpriv --reuid="$member" --regid=nogroup --init-groups)
  out=$("${as[@]}" gdbus call --address "$BUS" --dest org.freedesktop.DBus --object-path /org/freedesktop/DBus \
          --method org.freedesktop.DBus.RequestName org.bluegreen.Agent1 4 2>&1)
  rc=$?
}
for who in nobody member; do
  own "$who"
  if [ $rc -ne 0 ] && printf '%s' "$out" | grep -q 'org.freedesktop.DBus.Error.AccessDenied'; then
    ok "policy: $who may not own org.bluegreen.Agent1"
  else
    not_ok "policy: $who may not own org.bluegreen.Agent1"; echo "# rc=$rc: $out"
  fi
done

if kill -0 "$agent_pid" 2>/dev/null; then ok "policy: the agent is still running"
else not_ok "policy: the agent is still running"; fi

echo "1..$n"
[ $failed -eq 0 ] || show_logs
exit $failed
