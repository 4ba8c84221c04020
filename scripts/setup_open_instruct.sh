#!/usr/bin/env bash
# Check out upstream Open Instruct at the pinned commit and install it, with flip-reward, for GRPO training.
#
#   scripts/setup_open_instruct.sh [--clone-only | --check]
#
# 1. Checks out OPEN_INSTRUCT_REPO at the commit in open-instruct/PIN into open-instruct/ (a blobless clone with a
#    sparse checkout: upstream's docs/ and README.md are left out, so this repo's open-instruct/README.md and
#    open-instruct/PIN stay; the checkout itself is git-ignored and never committed). Re-running it moves an
#    existing checkout to the pinned commit (it refuses when the checkout has local changes).
# 2. Says what this machine lacks for training (Python 3.12, uv, a CUDA GPU) and, when Python and uv are there,
#    installs open-instruct the way upstream does (`uv sync`, with its cuda12 or cuda13 group) into the active
#    virtualenv (or open-instruct/.venv, with a uv-managed Python 3.12, when none is active), then this package
#    (editable) into the same environment, and checks that the general-flip verifier registers.
#
# --clone-only  stop after step 1            --check  only report what is missing (exit 1 if anything is)
# Environment: OPEN_INSTRUCT_REPO (default https://github.com/allenai/open-instruct.git; a local path or mirror
# works), OPEN_INSTRUCT_DIR (default <repo>/open-instruct), OPEN_INSTRUCT_COMMIT (default: open-instruct/PIN),
# CUDA_GROUP (cuda12 or cuda13, default cuda12), UV (default uv).
# Exit status: 0 installed (or cloned, with --clone-only), 1 missing prerequisites or a failed step.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly REPO
readonly DEFAULT_REPO_URL=https://github.com/allenai/open-instruct.git

log() { printf 'setup_open_instruct: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
usage() { sed -n '2,/^set -euo/{/^set/d;s/^# \{0,1\}//;p}' "$0"; }

mode=install
case ${1:-} in
  "") ;;
  --clone-only) mode=clone ;;
  --check) mode=check ;;
  -h | --help) usage; exit 0 ;;
  *) usage >&2; exit 2 ;;
esac

url=${OPEN_INSTRUCT_REPO:-$DEFAULT_REPO_URL}
dir=${OPEN_INSTRUCT_DIR:-$REPO/open-instruct}
commit=${OPEN_INSTRUCT_COMMIT:-$(tr -d '[:space:]' <"$REPO/open-instruct/PIN")}
cuda_group=${CUDA_GROUP:-cuda12}
uv=${UV:-uv}
[[ $commit =~ ^[0-9a-f]{40}$ ]] || die "the pinned commit must be a full 40-hex SHA, got '$commit'"
[[ $cuda_group == cuda12 || $cuda_group == cuda13 ]] || die "CUDA_GROUP must be cuda12 or cuda13, got '$cuda_group'"

# Points an existing or new checkout in $dir at $commit, leaving this repo's README.md and PIN in place.
checkout() {
  command -v git >/dev/null || die "git is not installed"
  mkdir -p "$dir"
  if [[ ! -d $dir/.git ]]; then
    local staging
    staging=$(mktemp -d "$dir/.clone.XXXXXX")
    log "cloning $url into $dir"
    # --filter=blob:none fetches file contents only for the sparse checkout (git ignores it for local paths).
    git clone --quiet --no-checkout --filter=blob:none "$url" "$staging" 2>&1 | grep -v 'filter is ignored' >&2 ||
      true
    [[ -d $staging/.git ]] || { rm -rf "$staging"; die "git clone of $url failed"; }
    mv "$staging/.git" "$dir/.git"
    rmdir "$staging"
    git -C "$dir" sparse-checkout set --no-cone '/*' '!/README.md' '!/docs/'
    # Our README.md sits where upstream's would: keep git from clearing its skip-worktree bit.
    git -C "$dir" config sparse.expectFilesOutsideOfPatterns true
    printf '/PIN\n/.clone.*\n/.venv/\n' >>"$dir/.git/info/exclude"
  else
    local current
    current=$(git -C "$dir" rev-parse HEAD 2>/dev/null || true)
    if [[ $current == "$commit" ]]; then
      log "$dir is already at $commit"
      return 0
    fi
    [[ -z $(git -C "$dir" status --porcelain --untracked-files=no) ]] ||
      die "$dir has local changes; commit or discard them before moving it to $commit"
  fi
  if ! git -C "$dir" cat-file -e "$commit^{commit}" 2>/dev/null; then
    log "fetching $commit"
    git -C "$dir" fetch --quiet origin "$commit" 2>/dev/null || git -C "$dir" fetch --quiet origin ||
      die "cannot fetch $commit from $url"
  fi
  git -C "$dir" -c advice.detachedHead=false checkout --quiet --detach "$commit" ||
    die "cannot check out $commit in $dir"
  # Upstream tracks a README.md too: keep ours, and keep git from touching or reporting it.
  git -C "$dir" update-index --skip-worktree README.md 2>/dev/null || true
  [[ $(git -C "$dir" rev-parse HEAD) == "$commit" ]] || die "$dir is not at $commit after checkout"
  log "open-instruct checked out at $commit in $dir"
}

# The interpreter of the environment to install into: the active virtualenv, else open-instruct/.venv.
target_python() {
  if [[ -n ${VIRTUAL_ENV:-} ]]; then echo "$VIRTUAL_ENV/bin/python"; else echo "$dir/.venv/bin/python"; fi
}

# Prints one line per missing prerequisite; exit status 1 when installing is impossible.
prerequisites() {
  local python blocked=0 version
  python=$(target_python)
  if [[ -z ${VIRTUAL_ENV:-} ]]; then
    echo "NOTE no active virtualenv: uv will create $dir/.venv with a uv-managed Python 3.12"
  else
    version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || echo none)
    if [[ $version != 3.12 ]]; then
      echo "MISSING Python 3.12: open-instruct requires ==3.12.*, the active virtualenv $VIRTUAL_ENV has $version" \
        "(deactivate it to let uv create open-instruct/.venv with Python 3.12)"
      blocked=1
    fi
  fi
  if ! command -v "$uv" >/dev/null; then
    echo "MISSING uv: open-instruct installs with uv (pip install uv, or https://docs.astral.sh/uv/)"
    blocked=1
  fi
  if ! nvidia-smi -L 2>/dev/null | grep -q '^GPU'; then
    echo "MISSING a CUDA GPU: nvidia-smi lists none, so this machine cannot train (installing still works, e.g." \
      "on a login node)"
  fi
  return "$blocked"
}

install() {
  local python
  python=$(target_python)
  log "installing open-instruct ($cuda_group) with uv sync into ${VIRTUAL_ENV:-$dir/.venv}"
  local -a sync=("$uv" sync --frozen)
  [[ -n ${VIRTUAL_ENV:-} ]] && sync+=(--active)
  [[ $cuda_group == cuda13 ]] && sync+=(--no-default-groups --group dev --group cuda13)
  (cd "$dir" && "${sync[@]}") || die "uv sync failed in $dir"
  log "installing flip-reward (editable) into the same environment"
  "$uv" pip install --python "$python" -e "$REPO" || die "installing $REPO failed"
  "$python" -c 'import flip_reward.integrations.open_instruct as p; p.register()' ||
    die "the general-flip verifier does not register with the installed open-instruct"
  log "installed; the general-flip verifier registers with open-instruct"
  "$python" -c 'import sys; from flip_reward.launch.preflight import check_env; sys.exit(check_env())' >&2 ||
    log "installed, but this machine cannot train (see MISSING above)"
  [[ -n ${VIRTUAL_ENV:-} ]] || log "activate the environment with: source $dir/.venv/bin/activate"
}

if [[ $mode == check ]]; then
  missing=$(prerequisites) || true
  printf '%s\n' "$missing" | sed '/^$/d'
  if [[ $missing != *MISSING* ]]; then echo "ready: Python 3.12, uv and a CUDA GPU are there"; exit 0; fi
  exit 1
fi

checkout
[[ $mode == clone ]] && exit 0
if ! missing=$(prerequisites); then
  printf '%s\n' "$missing" >&2
  die "cannot install open-instruct on this machine (see MISSING above); the checkout is ready in $dir"
fi
if [[ -n $missing ]]; then printf '%s\n' "$missing" >&2; fi
install
