#!/usr/bin/env bash
# Keeps in OUT/students only the students this shard graded (grade.json's
# "students"), so a shard's artifact holds its own students, not every run
# resume-seed.sh copied in from the whole class.
#
# Usage: resume-prune.sh OUT   (needs jq)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT" >&2; exit 2; }
out=$1
# No manifest: kgrade never started, and what was seeded is still worth keeping.
[ -f "$out/grade.json" ] && [ -d "$out/students" ] || exit 0
keep=$(jq -r '.students[]' "$out/grade.json")
removed=0
for dir in "$out"/students/*/; do
    [ -d "$dir" ] || continue
    name=$(basename "$dir")
    if ! grep -qxF -- "$name" <<<"$keep"; then
        rm -rf -- "$dir"
        removed=$((removed + 1))
    fi
done
echo "resume: $removed students of other shards removed from $out"
