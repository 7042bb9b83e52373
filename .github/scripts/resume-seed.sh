#!/usr/bin/env bash
# Seeds a shard's output directory with the finished runs of earlier shard
# outputs, so that `kgrade grade --resume --out OUT` keeps them. A run is
# copied when its done.json records no error and OUT has no finished run of
# its own there; sources given first win. kgrade still regrades every run
# whose key (submission digest, inputs) changed since.
#
# Usage: resume-seed.sh OUT SOURCE...   (each SOURCE a `kgrade grade --out`)
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUT SOURCE..." >&2; exit 2; }
out=$1
shift

finished() { [ -f "$1/done.json" ] && ! grep -q '"error"' "$1/done.json"; }

copied=0
for src in "$@"; do
    [ -d "$src" ] || continue
    for done in "$src"/reference/*/done.json "$src"/students/*/*/done.json; do
        run=${done%/done.json}
        finished "$run" || continue
        # The artifacts are data from an earlier run: a run holding a link
        # (which could point anywhere on this machine) is graded again.
        [ -z "$(find "$run" -type l -print -quit)" ] || continue
        rel=${run#"$src"/}
        finished "$out/$rel" && continue
        mkdir -p "$(dirname "$out/$rel")"
        rm -rf "${out:?}/$rel"
        cp -R "$run" "$out/$rel"
        copied=$((copied + 1))
    done
done
echo "resume: $copied finished runs copied into $out"
