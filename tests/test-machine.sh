#!/bin/bash
# test-machine.sh — bluegreen installed and run as a real service, on two
# booted Debian hosts (tools/bg-machine: systemd as PID 1, the system bus,
# journald), from the Debian packages of this tree (tools/debs):
#   [package]        the packages build, lintian has no error or warning,
#                    they install with dpkg, `dpkg -L` is the layout README.md
#                    documents, an unconfigured agent does not start;
#                    removal and purge leave running slots' state as
#                    documented (README.md, Install)
#   [system-bus]     the agent runs from the shipped system unit with its
#                    full hardening, owns org.bluegreen.Agent1 on the system
#                    bus; the policy lets root and the bluegreen group steer
#                    and refuses everyone else
#   [journal-system] journalctl BLUEGREEN_JOB= and the catalog show the
#                    agent's messages, journalctl -u the job's output
#   [boot]           a job deployed on both hosts and cut over, with the
#                    fleet tools inside the hosts (the Kafka mock, the load
#                    generator, bluegreenctl deploy/cutover --wait), the
#                    verifier clean; a host powered off and booted again
#                    starts its agent from the enabled unit with its state
#   [reboot-host]    h2 powered off and booted again inside the cutover's
#                    observation window, under load: it brings its slots
#                    back steered as before (agent.state and the control
#                    log), the window ends with the outgoing slots stopped
#                    on both hosts, and the output is exact
#
# Not part of make check: .ci/run runs it once per CI run, on its own (see
# tests/machine.mk). It needs root, network access to a Debian mirror for
# the one-time root (tools/bg-machine image) and about 2-4 minutes
# (1.5-2.5 min with BG_TEST_DEBS, on an idle and on a loaded machine).
#
# SPDX-License-Identifier: LGPL-2.1-or-later
set -u
TOP_SRCDIR=${BG_TOP_SRCDIR:-$(cd "$(dirname "$0")/.." && pwd)}
T=${BG_TEST_TMPDIR:-$(mktemp -d)}
cd "$T" || exit 99
export BG_MACHINES_DIR="$T/machines"
machine="$TOP_SRCDIR/tools/bg-machine"
started=$(date +%s)

n=0
failed=0
ok () { n=$((n + 1)); echo "ok $n - $1"; }
not_ok () { n=$((n + 1)); failed=1; echo "not ok $n - $1"; }
check () { local what=$1; shift; if "$@" >"$T/check.out" 2>&1; then ok "$what"; else comment <"$T/check.out"; not_ok "$what"; fi; }
bail () { echo "Bail out! $1"; exit 1; }
comment () { sed 's/^/# /'; }
elapsed () { echo $(( $(date +%s) - started )); }

# Never leave a host running, whatever ends the test.
hosts=(h1 h2)
cleanup () {
  for h in "${hosts[@]}"; do
    BG_MACHINE_POWEROFF_TIMEOUT=5 "$machine" destroy "$h" >/dev/null 2>&1
  done
}
trap cleanup EXIT
trap 'exit 143' TERM INT

[ "$(id -u)" -eq 0 ] || bail "needs root (namespaces, cgroups, dpkg-buildpackage)"

on () { local h=$1; shift; "$machine" exec "$h" -- "$@"; }
# on_sh HOST SCRIPT: a shell script inside HOST.
on_sh () { local h=$1; shift; "$machine" exec "$h" -- sh -c "$1"; }

# wait_for SECONDS CMD...: poll every 0.2 s until CMD succeeds.
wait_for () {
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

# ---- [package] build ---------------------------------------------------------


# BG_TEST_DEBS=DIR: use packages tools/debs built there (lintian is run
# again on them); for working on this test without rebuilding each time.
if [ -n "${BG_TEST_DEBS:-}" ]; then
  mkdir -p "$T/debs" && cp "$BG_TEST_DEBS"/*.deb "$BG_TEST_DEBS"/*.changes "$BG_TEST_DEBS"/*.buildinfo "$T/debs/" &&
    lintian --fail-on error,warning "$T/debs"/*.changes >"$T/debs/lintian.txt" 2>&1
  check "[package] packages from $BG_TEST_DEBS (tools/debs); lintian reports no error or warning" test $? = 0
elif BG_LINTIAN=1 "$TOP_SRCDIR/tools/debs" "$T/debs" >"$T/debs.out" 2>&1; then
  ok "[package] dpkg-buildpackage -us -uc -b builds; lintian reports no error or warning ($(elapsed) s)"
else
  tail -n 40 "$T/debs.out" | comment
  bail "the packages do not build"
fi
grep -v '^running with root' "$T/debs/lintian.txt" | comment
debs=()
for p in bluegreend libbluegreen0 libbluegreen-dev bluegreen-tools; do
  f=("$T/debs/${p}_"*.deb)
  [ -f "${f[0]}" ] && debs+=("${f[0]}")
done
check "[package] four packages: bluegreend, libbluegreen0, libbluegreen-dev, bluegreen-tools" test ${#debs[@]} -eq 4
check "[package] libbluegreen0 ships its symbols file" \
  sh -c "dpkg-deb -I '$T/debs/libbluegreen0_'*.deb symbols | grep -q '^ bg_gate_admit@Base'"
check "[package] bluegreend.conf is a conffile" \
  sh -c "dpkg-deb -I '$T/debs/bluegreend_'*.deb conffiles | grep -qx /etc/bluegreen/bluegreend.conf"

# ---- boot two hosts and install ---------------------------------------------

"$machine" image >/dev/null || bail "no Debian root (bg-machine image)"
for h in "${hosts[@]}"; do "$machine" boot "$h" >"$T/boot-$h.out" 2>&1 & done
wait
for h in "${hosts[@]}"; do
  "$machine" pid "$h" >/dev/null || { cat "$T/boot-$h.out" | comment; bail "$h did not boot"; }
done
ok "[boot] two hosts booted, systemd running as PID 1 ($(elapsed) s)"

# The -dev package needs libglib2.0-dev, which the hosts do not have: its
# contents are checked from the .deb.
runtime_debs=("${debs[0]}" "${debs[1]}" "${debs[3]}")
for h in "${hosts[@]}"; do
  "$machine" install "$h" "${runtime_debs[@]}" >"$T/install-$h.out" 2>&1 || { comment <"$T/install-$h.out"; bail "dpkg -i failed on $h"; }
done
ok "[package] bluegreend, libbluegreen0 and bluegreen-tools install with dpkg -i on both hosts"

# The layout README.md documents (section Install), file by file.
layout_bluegreend="/etc/bluegreen/bluegreend.conf
/lib/systemd/system/bluegreen.slice
/lib/systemd/system/bluegreend.service
/usr/bin/bluegreenctl
/usr/lib/systemd/catalog/bluegreen.catalog
/usr/lib/sysusers.d/bluegreen.conf
/usr/lib/tmpfiles.d/bluegreen.conf
/usr/sbin/bluegreend
/usr/share/bash-completion/completions/bluegreenctl
/usr/share/dbus-1/interfaces/org.bluegreen.Agent1.xml
/usr/share/dbus-1/system-services/org.bluegreen.Agent1.service
/usr/share/dbus-1/system.d/org.bluegreen.Agent1.conf
/usr/share/doc/bluegreend/changelog.gz
/usr/share/doc/bluegreend/copyright
/usr/share/doc/bluegreend/examples/bluegreend.conf
/usr/share/doc/bluegreend/examples/example.job
/usr/share/doc/bluegreend/examples/user/bluegreend.service
/usr/share/lintian/overrides/bluegreend
/usr/share/locale/de/LC_MESSAGES/bluegreen.mo
/usr/share/man/man1/bluegreenctl.1.gz
/usr/share/man/man5/bluegreen.job.5.gz
/usr/share/man/man5/bluegreend.conf.5.gz
/usr/share/man/man8/bluegreend.8.gz"
layout_libbluegreen0="/usr/lib/x86_64-linux-gnu/libbluegreen.so.0
/usr/lib/x86_64-linux-gnu/libbluegreen.so.0.0.0
/usr/share/doc/libbluegreen0/changelog.gz
/usr/share/doc/libbluegreen0/copyright"
layout_libbluegreen_dev="/usr/include/bluegreen.h
/usr/lib/x86_64-linux-gnu/libbluegreen.so
/usr/lib/x86_64-linux-gnu/pkgconfig/bluegreen.pc
/usr/share/doc/libbluegreen-dev/changelog.gz
/usr/share/doc/libbluegreen-dev/copyright"
layout_bluegreen_tools="/usr/bin/bluegreen-example-job
/usr/bin/bluegreen-verify
/usr/libexec/bluegreen/bluegreen-kafka-mock
/usr/libexec/bluegreen/bluegreen-loadgen
/usr/share/doc/bluegreen-tools/changelog.gz
/usr/share/doc/bluegreen-tools/copyright
/usr/share/man/man1/bluegreen-example-job.1.gz
/usr/share/man/man1/bluegreen-verify.1.gz"
layout_ok=1
for p in bluegreend libbluegreen0 libbluegreen-dev bluegreen-tools; do
  var="layout_${p//-/_}"
  if [ "$p" = libbluegreen-dev ]; then
    dpkg-deb -c "${debs[2]}" | awk '$1 !~ /^d/ { sub(/^\./, "", $6); print $6 }' | sort >"$T/dpkg-L-$p"
  else
    on_sh h1 "dpkg -L $p | while read -r f; do [ -d \"\$f\" ] || echo \"\$f\"; done | sort" >"$T/dpkg-L-$p" 2>&1
  fi
  echo "${!var}" | sort >"$T/expected-$p"
  if ! diff -u "$T/expected-$p" "$T/dpkg-L-$p" >"$T/diff-$p"; then
    layout_ok=0; comment <"$T/diff-$p"
  fi
  # README.md names each path (with the multiarch triplet written as <arch>).
  while read -r f; do
    case "$f" in /usr/share/doc/*/changelog.gz|/usr/share/doc/*/copyright|/usr/share/lintian/*) continue ;; esac
    g=${f//x86_64-linux-gnu/<arch>}
    grep -qF "$g" "$TOP_SRCDIR/README.md" || { layout_ok=0; echo "# README.md does not document $g"; }
  done <"$T/expected-$p"
done
check "[package] dpkg -L of each package (dpkg-deb -c of -dev) is the layout documented in README.md (no .la, no user unit)" test $layout_ok = 1

check "[package] the group bluegreen exists (sysusers.d)" on h1 getent group bluegreen
check "[package] /etc/bluegreen/jobs.d exists (package and tmpfiles.d)" on h1 test -d /etc/bluegreen/jobs.d
# systemctl show prints properties in its own order: sort them.
show () { local h=$1; shift; on "$h" systemctl show "$@" | sort | tr '\n' ' '; }
st=$(show h1 -p ActiveState,ConditionResult,NRestarts,UnitFileState bluegreend)
echo "# $st"
check "[package] unconfigured (no job yet): the enabled agent is skipped by its start condition, not failed" \
  test "$st" = "ActiveState=inactive ConditionResult=no NRestarts=0 UnitFileState=enabled "

# ---- configure: the Kafka mock in h1, the agent on both -----------------------

on h1 systemd-run --quiet --unit=kafka-mock /usr/libexec/bluegreen/bluegreen-kafka-mock --brokers=3 \
  --topic=clicks:6 --topic=click-counts:6 --topic=bluegreen-control:1 --bootstrap-file=/run/kafka.bootstrap ||
  bail "cannot start the Kafka mock in h1"
wait_for 10 on h1 test -s /run/kafka.bootstrap || bail "the Kafka mock did not start"
bootstrap=$(on h1 cat /run/kafka.bootstrap)
# [reboot-host] powers h2 off and boots it again inside the cutover's
# observation window: the window (which starts at the cutover's done) is
# several times what the power-off, the boot and the agent's start take
# (2-6 s measured here, at load averages up to 25 too), and the test waits
# for its end anyway.
observation=40
echo "# Kafka mock in h1: $bootstrap"
for h in "${hosts[@]}"; do
  on_sh "$h" "cat >/etc/bluegreen/bluegreend.conf <<EOF
[Agent]
HostId=$h
HeartbeatSec=0.5

[Kafka]
BootstrapServers=$bootstrap

[Kafka.Properties]
fetch.wait.max.ms=10
EOF
cat >/etc/bluegreen/jobs.d/clicks.job <<EOF
[Job]
ExecStart=/usr/bin/bluegreen-example-job --version=%v --input=clicks --output=click-counts -X session.timeout.ms=3000 -X heartbeat.interval.ms=500
InputTopics=clicks
OutputTopics=click-counts
Hosts=h1;h2

[Readiness]
MaxLag=3000
StableSec=1

[Cutover]
ObservationSec=$observation
DeadlineSec=10
EOF
systemctl start bluegreend" || bail "cannot configure and start the agent on $h"
done

# ---- [system-bus] -----------------------------------------------------------

for h in "${hosts[@]}"; do
  wait_for 20 on "$h" busctl --system status org.bluegreen.Agent1 || bail "no org.bluegreen.Agent1 on $h's system bus"
done
main=$(on h1 systemctl show -P MainPID bluegreend)
owner=$(on h1 busctl --system call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
  GetConnectionUnixProcessID s org.bluegreen.Agent1 | awk '{print $2}')
check "[system-bus] the agent of the system unit (pid $main) owns org.bluegreen.Agent1 on the system bus" \
  test -n "$main" -a "$main" = "$owner"
st=$(show h1 -p FragmentPath,Type,ActiveState bluegreend)
check "[system-bus] it runs from the shipped unit: $st" \
  test "$st" = "ActiveState=active FragmentPath=/lib/systemd/system/bluegreend.service Type=notify "
props=$(show h1 -p ProtectHome,ProtectKernelTunables,PrivateUsers,ProtectSystem,NoNewPrivileges,CapabilityBoundingSet bluegreend)
echo "# $props"
check "[system-bus] full hardening set, the two settings a user manager cannot apply included" \
  test "$props" = "CapabilityBoundingSet= NoNewPrivileges=yes PrivateUsers=yes ProtectHome=yes ProtectKernelTunables=yes ProtectSystem=strict "
st=$(on h1 cat "/proc/$main/status")
uidmap=$(on h1 cat "/proc/$main/uid_map" | tr -s ' ')
home=$(on h1 nsenter -t "$main" -m stat -c %a /home 2>&1)
sysro=$(on h1 nsenter -t "$main" -m sh -c 'grep -E " /proc/sys " /proc/self/mountinfo | grep -c " ro,"')
echo "# uid_map:$uidmap; /home mode in its namespace: $home; /proc/sys read-only mounts: $sysro"
check "[system-bus] and applied: no capabilities, no new privileges, own user namespace, /home inaccessible, /proc/sys read-only" \
  sh -c "echo '$st' | grep -q '^CapEff:[[:space:]]*0000000000000000' && echo '$st' | grep -q '^NoNewPrivs:[[:space:]]*1' &&
         [ '$uidmap' != ' 0 0 4294967295' ] && [ '$home' = 0 ] && [ '$sysro' -ge 1 ]"

on_sh h1 "useradd --no-create-home --groups bluegreen bg-operator && useradd --no-create-home bg-outsider" >"$T/useradd.out" 2>&1 || comment <"$T/useradd.out"
# setpriv here takes numeric ids only.
as_user () { local u; u=$(on h1 id -u "$1"); echo "--reuid=$u --regid=$u --init-groups"; }
call () { on h1 setpriv "$@" busctl --system call org.bluegreen.Agent1 /org/bluegreen/Agent1 org.bluegreen.Agent1 Reload 2>&1; }
check "[system-bus] root steers the agent (Reload)" sh -c "'$machine' exec h1 -- busctl --system call org.bluegreen.Agent1 /org/bluegreen/Agent1 org.bluegreen.Agent1 Reload"
out=$(call $(as_user bg-operator)); rc=$?
echo "# operator: rc $rc $out"
check "[system-bus] a member of the bluegreen group steers it" test $rc -eq 0
out=$(call $(as_user bg-outsider)); rc=$?
echo "# outsider: rc $rc $out"
check "[system-bus] anyone else is refused by the bus policy (AccessDenied)" \
  sh -c "[ $rc -ne 0 ] && echo '$out' | grep -q 'Access denied\|AccessDenied'"
out=$(on h1 setpriv $(as_user bg-outsider) busctl --system get-property org.bluegreen.Agent1 /org/bluegreen/Agent1 org.bluegreen.Agent1 HostId 2>&1)
check "[system-bus] anyone may read properties (HostId: $out)" test "$out" = 's "h1"'

# The memory check of Deploy reads /proc/meminfo inside the unit's sandbox
# (the system unit leaves ProcSubset= at "all" for it): a job reserving more
# memory than any host has is refused with NoResources.
on_sh h1 "printf '[Job]\nExecStart=/bin/true\nInputTopics=clicks\nOutputTopics=click-counts\n[Resources]\nMemoryMax=512T\n' >/etc/bluegreen/jobs.d/huge.job && bluegreenctl reload" >/dev/null 2>&1
deadline=$(( $(date +%s) + 20 ))
while out=$(on h1 bluegreenctl --no-color deploy huge v1 --live 2>&1); echo "$out" | grep -q replaying && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
echo "# deploy huge: $out"
check "[system-bus] Deploy's memory check runs under the system unit: a 512T MemoryMax= is refused (NoResources)" \
  sh -c "echo '$out' | grep -q 'MiB available'"
on_sh h1 "rm /etc/bluegreen/jobs.d/huge.job && bluegreenctl reload" >/dev/null 2>&1

# ---- [boot] deploy and cut over across both hosts ------------------------------

ctl_wait () {
  # The agent refuses with Busy ("replaying") until it has read the control
  # log to its end: asked again. A Cutover or Rollback is also refused with
  # NotReady or HostSilent while the coordinator's view of another host,
  # which comes from that host's hellos on the control topic, has not
  # caught up (right after `deploy --wait` returned on h2, h1 learns it
  # from h2's next hello; CI once saw "the green slot of job 'clicks' is
  # not ready on host h2"): `cutover --wait` and `rollback --wait` ask
  # again themselves (bluegreenctl(1), NOTES), so for them nothing is
  # retried here: a refusal reaching this loop is a failure.
  local h=$1 deadline=$(( $(date +%s) + 30 )) again=replaying last= t0; shift
  case "$1" in cutover|rollback) again= ;; esac
  t0=$(date +%s%N)
  while :; do
    if on "$h" bluegreenctl --no-color "$@" >"$T/ctl-$h.out" 2>&1; then
      [ -n "$last" ] && echo "# $h: $1 accepted $(( ($(date +%s%N) - t0) / 1000000 )) ms after the first refusal"
      return 0
    fi
    [ -n "$again" ] && grep -q "$again" "$T/ctl-$h.out" && [ "$(date +%s)" -lt "$deadline" ] || { comment <"$T/ctl-$h.out"; return 1; }
    if [ "$(cat "$T/ctl-$h.out")" != "$last" ]; then
      last=$(cat "$T/ctl-$h.out"); echo "# $h: $1: $last (not yet: asking again)"
    fi
    sleep 0.2
  done
}
# diagnose: what each agent logged and sees, as TAP comments (a failed
# cutover's reason is in the agents' journals, not in bluegreenctl's output).
diagnose () {
  for h in "${hosts[@]}"; do
    echo "# ---- $h: bluegreenctl status; hosts; the agent's journal (last 80 lines) ----"
    on "$h" bluegreenctl --no-color status 2>&1 | comment
    on "$h" bluegreenctl --no-color hosts 2>&1 | comment
    on "$h" journalctl --no-pager -o short-precise -n 80 -u bluegreend 2>&1 | comment
  done
}
on h1 systemd-run --quiet --unit=loadgen /usr/libexec/bluegreen/bluegreen-loadgen --bootstrap="$bootstrap" \
  --topic=clicks --count=20000 --keys=200 --rate=1000 --seed=42 || bail "cannot start the load generator"
for h in "${hosts[@]}"; do ctl_wait "$h" deploy clicks v1 --live --wait --timeout=60 & done
rc=0; for j in $(jobs -p); do wait "$j" || rc=1; done
check "[boot] bluegreenctl deploy clicks v1 --live --wait on both hosts ($(elapsed) s)" test $rc = 0
for h in "${hosts[@]}"; do ctl_wait "$h" deploy clicks v2 --wait --timeout=90 & done
rc=0; for j in $(jobs -p); do wait "$j" || rc=1; done
check "[boot] bluegreenctl deploy clicks v2 --wait on both hosts (green, blackholed, ready) ($(elapsed) s)" test $rc = 0
ctl_wait h1 cutover clicks --wait --timeout=60; rc=$?
# On a failure the agents' side first, then bluegreenctl's answer again,
# right above the failed test (what tools/check shows of a failure).
[ $rc = 0 ] || diagnose
comment <"$T/ctl-h1.out"
check "[boot] bluegreenctl cutover clicks --wait from h1 commits fleet-wide ($(elapsed) s)" test $rc = 0
check "[boot] h2 sees green live after the cutover" \
  sh -c "'$machine' exec h2 -- busctl --system get-property org.bluegreen.Agent1 /org/bluegreen/Agent1/job/clicks org.bluegreen.Job1 LiveColor | grep -q green"
# ---- [reboot-host] h2 powered off and booted again mid-observation -------------
#
# Under load (a second load generator runs through the outage), inside the
# cutover's observation window: h2's slots die with it (the live green and
# the outgoing blue, blackholed), h1's instances take their partitions
# over. Booted again, h2's agent starts from the enabled unit, restores its
# slots from /var/lib/bluegreen/agent.state and the control log and brings
# both back steered as before; the window ends on both hosts (the outgoing
# blue stopped fleet-wide) and the output is exact.

# prop HOST PATH-BELOW-JOB IFACE NAME: a property's value, without its type.
prop () {
  on "$1" busctl --system get-property org.bluegreen.Agent1 "/org/bluegreen/Agent1/job/clicks$2" "org.bluegreen.$3" "$4" |
    sed 's/^[a-z]* //; s/^"\(.*\)"$/\1/'
}
# slots HOST: "color version state sink-mode unit-state" of both slots.
slots () {
  local c
  for c in blue green; do
    echo "$c $(prop "$1" /$c Slot1 Version) $(prop "$1" /$c Slot1 State) $(prop "$1" /$c Slot1 SinkMode)" \
      "$(on "$1" systemctl is-active bluegreen-clicks-$c.service)"
  done | tr '\n' ';'
}
# The incoming green emits from the final barriers on ("gated" with its
# emit ranges, or "live"); the outgoing blue is blackholed after the done.
observing_with_both () {
  [ "$(prop "$1" "" Job1 Phase)" = observing ] &&
    case "$(slots "$1")" in "blue v1 running blackhole active;green v2 running "*" active;") ;; *) false ;; esac &&
    [ "$(prop "$1" /green Slot1 SinkMode)" != blackhole ]
}
check "[reboot-host] after the cutover h2 observes: green v2 emitting, the outgoing blue v1 running blackholed" \
  wait_for 20 observing_with_both h2
echo "# h2 before the power-off: $(slots h2)"
slots_before=$(slots h2)
gen_before=$(prop h2 /green Slot1 Generation)
ranges_before="$(prop h2 /blue Slot1 Ranges) / $(prop h2 /green Slot1 Ranges)"
lastcut () { on "$1" busctl --system get-property org.bluegreen.Agent1 /org/bluegreen/Agent1/job/clicks org.bluegreen.Job1 LastCutover; }
cut_before=$(lastcut h2)
echo "# h2's last cutover: $cut_before"
echo "# h2's green generation $gen_before; ranges blue / green: $ranges_before"
on h1 systemd-run --quiet --unit=loadgen2 /usr/libexec/bluegreen/bluegreen-loadgen --bootstrap="$bootstrap" \
  --topic=clicks --count=30000 --keys=200 --rate=1000 --seed=43 || bail "cannot start the second load generator"
t0=$(date +%s)
"$machine" poweroff h2 || bail "h2 did not power off"
"$machine" boot h2 >"$T/boot-h2.out" 2>&1 || { comment <"$T/boot-h2.out"; bail "h2 did not boot again"; }
echo "# h2 powered off and booted again in $(( $(date +%s) - t0 )) s ($(elapsed) s)"
check "[boot] after a reboot, h2's agent starts on boot from the enabled unit and owns its name" \
  wait_for 30 on h2 busctl --system status org.bluegreen.Agent1
check "[reboot-host] the second load generator was producing all through h2's outage" \
  sh -c "[ \"\$('$machine' exec h1 -- systemctl show -P ActiveState loadgen2)\" = active ]"
check "[boot] h2 keeps its state across the reboot (/var/lib/bluegreen/agent.state)" on h2 test -s /var/lib/bluegreen/agent.state
check "[boot] h2 keeps its configuration, group and jobs directory" \
  on_sh h2 "test -f /etc/bluegreen/jobs.d/clicks.job && getent group bluegreen >/dev/null"
back_as_before () { observing_with_both h2 && [ "$(slots h2)" = "$slots_before" ]; }
wait_for 60 back_as_before; rc=$?
echo "# h2 after the boot ($(elapsed) s): phase $(prop h2 "" Job1 Phase); $(slots h2)"
check "[reboot-host] h2 brings both slots back, still observing, in the same versions and sink modes ($(elapsed) s)" test $rc = 0
ranges_after="$(prop h2 /blue Slot1 Ranges) / $(prop h2 /green Slot1 Ranges)"
cut_after=$(lastcut h2)
[ "$cut_after" = "$cut_before" ] || echo "# h2's last cutover after the boot: $cut_after"
check "[reboot-host] ... steered as before the power-off (the same emit ranges) and the same last cutover" \
  test "$ranges_after" = "$ranges_before" -a "$cut_after" = "$cut_before"
applied () { local g; g=$(prop h2 /green Slot1 Generation); [ "$g" -gt "$gen_before" ] && [ "$(prop h2 /green Slot1 AppliedGeneration)" = "$g" ]; }
check "[reboot-host] ... under a grown generation, which the new green instance applied (was $gen_before)" wait_for 30 applied
check "[reboot-host] h2's agent says it brought the slots back" \
  sh -c "'$machine' exec h2 -- journalctl -b --no-pager -o cat -u bluegreend | grep -c 'has no unit (the host restarted): bringing it back' | grep -qx 2"
# The window started at the done; it ends on each host by its own clock:
# the outgoing blue stopped everywhere (a stopped slot has no version), the
# job live in green.
window_over () {
  local h
  for h in "${hosts[@]}"; do
    [ "$(prop "$h" "" Job1 Phase)" = live ] && [ "$(prop "$h" "" Job1 LiveColor)" = green ] &&
      case "$(slots "$h")" in "blue "*" stopped "*" inactive;green v2 running "*" active;") ;; *) return 1 ;; esac || return 1
  done
}
wait_for $((observation + 30)) window_over; rc=$?
for h in "${hosts[@]}"; do echo "# $h: phase $(prop "$h" "" Job1 Phase); $(slots "$h")"; done
check "[reboot-host] the observation window ends: the outgoing blue stopped on both hosts, green live ($(elapsed) s)" test $rc = 0
last_done () { lastcut "$1" | awk '{print $5}'; }
check "[reboot-host] the cutover is done on both hosts ($(last_done h1), $(last_done h2))" \
  test "$(last_done h1) $(last_done h2)" = '"done" "done"'
for u in loadgen loadgen2; do
  wait_for 60 sh -c "[ \"\$('$machine' exec h1 -- systemctl show -P ActiveState $u)\" != active ]"
done
check "[boot] the load generators produced their 20000 and 30000 records" \
  sh -c "for u in loadgen loadgen2; do [ \"\$('$machine' exec h1 -- systemctl show -P Result \$u 2>/dev/null)\" = success ] && [ \"\$('$machine' exec h1 -- systemctl show -P ExecMainStatus \$u)\" = 0 ] || exit 1; done"
# The committed (final) barriers, from LastCutover: (id, out, in, result,
# reason, started, duration, [(topic, partition, offset)...]).
barriers=$(lastcut h2 | awk '{ for (i = 10; i + 2 <= NF; i += 3) printf "%s%s:%s", (i > 10 ? "," : ""), $(i + 1), $(i + 2) }')
echo "# committed barriers: $barriers"
on h2 bluegreen-verify --bootstrap="$bootstrap" --input=clicks --output=click-counts --settle=2 --timeout=60 \
  --outgoing=blue --incoming=green --expect-barrier="$barriers" >"$T/verify.out" 2>&1; rc=$?
comment <"$T/verify.out"
check "[boot] [reboot-host] bluegreen-verify inside h2: exact over all 50000 records (no gap, no cross-version duplicate, the committed barriers kept)" \
  sh -c "[ $rc = 0 ] && [ -n '$barriers' ] && grep -q '^input topic clicks: 50000 records' '$T/verify.out'"

# ---- [journal-system] ---------------------------------------------------------

jn=$(on h1 journalctl --no-pager -o cat BLUEGREEN_JOB=clicks _SYSTEMD_UNIT=bluegreend.service | wc -l)
check "[journal-system] journalctl BLUEGREEN_JOB=clicks shows the agent's messages ($jn)" test "$jn" -gt 0
cut_id=$(sed -n 's/^-- \([0-9a-f]\{32\}\)$/\1/p' "$TOP_SRCDIR/data/bluegreen.catalog" | head -n 1)
check "[journal-system] the installed catalog is in journalctl's database" \
  sh -c "'$machine' exec h1 -- journalctl --list-catalog | grep -qi '^$cut_id'"
xn=$(on h1 journalctl --no-pager -x BLUEGREEN_JOB=clicks _SYSTEMD_UNIT=bluegreend.service | grep -c '^ *░░ \|^-- ')
check "[journal-system] journalctl -x explains the agent's messages from the catalog ($xn lines)" test "$xn" -gt 0
committed=$(on h1 journalctl --no-pager -o cat BLUEGREEN_JOB=clicks MESSAGE_ID=76132ff532074f1cbefc1a15559a6b59 | wc -l)
check "[journal-system] the commit is found by its MESSAGE_ID ($committed)" test "$committed" -gt 0
jobout=$(on h2 journalctl --no-pager -u bluegreen-clicks-green.service | wc -l)
check "[journal-system] journalctl -u bluegreen-clicks-green.service shows the job's own log ($jobout lines)" test "$jobout" -gt 1

# ---- [system-bus] D-Bus activation follows the unit's enablement ---------------

on h2 systemctl stop bluegreend
on h2 systemctl disable --quiet bluegreend
out=$(on h2 busctl --system introspect org.bluegreen.Agent1 /org/bluegreen/Agent1 2>&1); rc=$?
echo "# disabled: $out"
check "[system-bus] disabled, a bus call does not start the agent (activation goes through the unit's alias)" \
  sh -c "[ $rc -ne 0 ] && ! '$machine' exec h2 -- systemctl is-active -q bluegreend"
on h2 systemctl enable --quiet bluegreend
# The agent owns its name (and so answers the call) before it has adopted
# its units and sent READY=1: the unit is "activating" until then, for a
# moment that grows with the machine's load (seen at a load average of 17).
check "[system-bus] enabled again, a bus call activates it" \
  sh -c "'$machine' exec h2 -- busctl --system introspect org.bluegreen.Agent1 /org/bluegreen/Agent1 &&
         case \"\$('$machine' exec h2 -- systemctl is-active bluegreend)\" in active|activating) ;; *) exit 1 ;; esac"
check "[system-bus] ... and the activated agent gets to active (READY=1)" wait_for 30 on h2 systemctl is-active -q bluegreend

# ---- [package] removal and purge ----------------------------------------------

on_sh h1 "systemctl is-active -q bluegreen-clicks-green.service" || echo "# h1: green not active before removal"
on h1 dpkg -r bluegreend >"$T/remove.out" 2>&1; rc=$?
comment <"$T/remove.out"
check "[package] dpkg -r bluegreend stops the agent; the job's slot keeps running; state and configuration stay" \
  on_sh h1 "[ $rc = 0 ] && ! systemctl is-active -q bluegreend && systemctl is-active -q bluegreen-clicks-green.service &&
            test -s /var/lib/bluegreen/agent.state && test -f /etc/bluegreen/bluegreend.conf"
on h1 dpkg -P bluegreend >"$T/purge.out" 2>&1; rc=$?
comment <"$T/purge.out"
check "[package] dpkg -P with slots still running removes the conffile, keeps /var/lib/bluegreen and says why" \
  on_sh h1 "[ $rc = 0 ] && ! test -e /etc/bluegreen/bluegreend.conf && test -s /var/lib/bluegreen/agent.state &&
            systemctl is-active -q bluegreen-clicks-green.service" 
check "[package] ... and the purge said so" grep -q 'keeping /var/lib/bluegreen' "$T/purge.out"
on_sh h2 "systemctl stop bluegreend 'bluegreen-*.service' && dpkg -P bluegreend" >"$T/purge2.out" 2>&1; rc=$?
check "[package] with the slots stopped, dpkg -P removes /var/lib/bluegreen too" \
  on_sh h2 "[ $rc = 0 ] && ! test -e /var/lib/bluegreen && ! test -e /etc/bluegreen/bluegreend.conf"

cleanup
hosts=()
echo "# booted-host test: $(elapsed) s in all"
echo "1..$n"
exit $failed
