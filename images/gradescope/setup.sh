#!/usr/bin/env bash
# Gradescope runs this once, as root, while it builds the autograder image
# (the bundle is unzipped into /autograder/source). It leaves kgrade, its
# prebuilt guests, the kernel source and a warm ccache in the image, so that
# run_autograder only patches, rebuilds and boots.
#
# Two starting points:
# - the kgrade image (images/Containerfile) as the autograder's base image:
#   kgrade is on PATH already, only the guests and the warm-up run;
# - Gradescope's stock Ubuntu image: a Rust toolchain first (Debian's
#   rustc-web on Debian 12, rustup elsewhere), then `cargo xtask setup`.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=/dev/null
. "$here/kgrade.env"
export KGRADE_ROOT="$here/kgrade"
export DEBIAN_FRONTEND=noninteractive

if ! command -v kgrade >/dev/null 2>&1; then
    apt-get update -q
    apt-get install -y -q --no-install-recommends ca-certificates curl git gcc libc6-dev
    if ! command -v cargo >/dev/null 2>&1; then
        if grep -qs '^VERSION_ID="12"' /etc/os-release && grep -qs '^ID=debian' /etc/os-release; then
            apt-get install -y -q --no-install-recommends rustc-web cargo-web
        else
            curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
            # shellcheck source=/dev/null
            . "$HOME/.cargo/env"
        fi
    fi
    (cd "$KGRADE_ROOT" && cargo xtask setup --no-dev-tools)
    (cd "$KGRADE_ROOT" && cargo build --release --locked -p kgrade)
    install -D -m 0755 "$KGRADE_ROOT/target/release/kgrade" /usr/local/bin/kgrade
fi

# The guests for this bundle's sources (kept if the image already has them).
kgrade guests --out /usr/local/share/kgrade/guests

# Warm-up: the reference on every target fetches and unpacks the kernel
# source (from kernel.org where the distribution has no linux-source) and
# fills ccache, so a student's build is an incremental one.
IFS=',' read -r -a targets <<<"$KGRADE_TARGETS"
for t in "${targets[@]}"; do
    kgrade run --fill-cache --target "$t" --out "/tmp/kgrade-warmup/$t"
done
rm -rf /tmp/kgrade-warmup
kgrade doctor --assignment "$KGRADE_ASSIGNMENT" --targets "$KGRADE_TARGETS"
