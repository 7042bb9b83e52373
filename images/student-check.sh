#!/usr/bin/env bash
# A student's check, as the student-check workflow runs it inside the kgrade
# image (or anyone runs it where kgrade is installed): PATCH graded with
# `kgrade run` on each target, after the reference solution on that target
# (whose build the student's starts from, and whose serial console the
# student's is compared with).
#
# Usage: student-check.sh ASSIGNMENT TARGETS PATCH OUT
#   TARGETS: comma-separated; empty means every target of ASSIGNMENT.
# OUT/<target>/ gets result.json, build.log, serial.log and serial.diff
# (target's `/` as `_`); OUT/summary.md a line per target. Exit 0 only when
# every target's verdict is pass; 1 otherwise.
set -uo pipefail
[ $# -eq 4 ] || { echo "usage: $0 ASSIGNMENT TARGETS PATCH OUT" >&2; exit 2; }
assignment=$1 targets=$2 patch=$3 out=$4
kgrade=${KGRADE:-kgrade}

if [ -n "$targets" ]; then
    list=$(tr ',' '\n' <<<"$targets" | grep .)
else
    list=$("$kgrade" targets | grep "^$assignment/")
fi
[ -n "$list" ] || { echo "student-check: no targets for $assignment" >&2; exit 2; }
[ -e "$patch" ] || { echo "student-check: $patch does not exist" >&2; exit 2; }

mkdir -p "$out"
summary="$out/summary.md"
printf '| target | verdict |\n|---|---|\n' >"$summary"
failed=0
for t in $list; do
    dir="$out/$(tr '/' '_' <<<"$t")"
    reference="$out/reference/$(tr '/' '_' <<<"$t")"
    echo "::group::$t: the reference solution"
    "$kgrade" run --target "$t" --out "$reference"
    ref_status=$?
    echo "::endgroup::"
    if [ "$ref_status" -ne 0 ]; then
        # Not the student's doing: the course's setup is broken.
        echo "| $t | error: the reference solution did not pass (exit $ref_status) |" >>"$summary"
        failed=1
        continue
    fi
    echo "::group::$t: $patch"
    "$kgrade" run --target "$t" --submission "$patch" --reference "$reference" --out "$dir"
    status=$?
    echo "::endgroup::"
    verdict=$(sed -n 's/^ *"verdict": *"\([^"]*\)".*/\1/p' "$dir/result.json" 2>/dev/null | head -n 1)
    case $status in
        0) echo "| $t | ${verdict:-pass} |" >>"$summary" ;;
        1) echo "| $t | ${verdict:-fail} |" >>"$summary"; failed=1 ;;
        *) echo "| $t | error: kgrade could not grade it (exit $status) |" >>"$summary"; failed=1 ;;
    esac
done
cat "$summary"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then cat "$summary" >>"$GITHUB_STEP_SUMMARY"; fi
exit "$failed"
