#!/usr/bin/env bash
# Which workflow runs this grading resumes from, one id a line, preferred
# first: this run itself when it is a re-run (what its earlier attempt
# uploaded, if GitHub kept it), then the newest other completed run of the
# same workflow with the same title (assignment and class) that still has
# shard artifacts. Whatever is found is only a candidate: kgrade reuses a run
# only when its key (submission digest and every input) is unchanged.
#
# Env: REPO (owner/name), WORKFLOW (file name), TITLE, RUN_ID, RUN_ATTEMPT.
# Needs gh (authenticated, actions: read) and jq.
set -euo pipefail

has_shards() {
    gh api "repos/$REPO/actions/runs/$1/artifacts?per_page=100" </dev/null |
        jq -e '[.artifacts[] | select((.expired | not) and (.name | startswith("shard-")))] | length > 0' \
            >/dev/null
}

if [ "${RUN_ATTEMPT:-1}" -gt 1 ] && has_shards "$RUN_ID"; then
    echo "$RUN_ID"
fi
gh api "repos/$REPO/actions/workflows/$WORKFLOW/runs?status=completed&per_page=30" </dev/null |
    TITLE="$TITLE" RUN_ID="$RUN_ID" jq -r \
        '.workflow_runs[] | select(.display_title == env.TITLE and (.id | tostring) != env.RUN_ID) | .id' |
    while read -r id; do
        if has_shards "$id"; then
            echo "$id"
            break
        fi
    done
