#!/usr/bin/env bash
# Install what the benchmark suite needs, then run it.
#   bench/run.sh full  [suite args]   all scenarios; writes docs/benchmarks.md and its PNG
#   bench/run.sh quick [suite args]   under 2 minutes; writes to a temp dir unless --out
#   bench/run.sh setup                only install (nginx, wrk, the bench group of uv.lock)
# Extra arguments go to `python -m bench.suite` (--out, --results, --skip-litellm).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-quick}"
shift || true

apt_install() {
  local missing=()
  command -v wrk >/dev/null 2>&1 || missing+=(wrk)
  [ -x /usr/sbin/nginx ] || command -v nginx >/dev/null 2>&1 || missing+=(nginx)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "==> installing ${missing[*]} (apt-get)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
}

venv_install() {
  # The bench group of uv.lock (installed by `scripts/setup dev`) holds the suite's tools.
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c "import granian, aiohttp, uvicorn, httpx, starlette, orjson, psutil, matplotlib, uvloop, httptools" 2>/dev/null; then
    scripts/setup dev
  fi
}

# The LiteLLM release the figures in docs/benchmarks.md were taken with; change it deliberately.
LITELLM_VERSION=1.106.2

litellm_install() {
  local venv=bench/.venv-litellm
  if [ -x "$venv/bin/litellm" ]; then
    return 0
  fi
  echo "==> installing LiteLLM proxy into $venv (its own venv, never a modelway dependency)"
  source scripts/uv.sh
  ensure_uv
  if "$UV" venv --quiet "$venv" && "$UV" pip install --quiet --python "$venv/bin/python" "litellm[proxy]==$LITELLM_VERSION"; then
    return 0
  fi
  echo "==> LiteLLM did not install; the suite continues without it" >&2
  rm -rf "$venv"
}

apt_install
venv_install
suite_args=()
case "$mode" in
  setup) exit 0 ;;
  full) litellm_install ;;
  quick) [ -x bench/.venv-litellm/bin/litellm ] || suite_args+=(--skip-litellm) ;;
  *) echo "usage: bench/run.sh [full|quick|setup] [suite args]" >&2; exit 2 ;;
esac
exec .venv/bin/python -m bench.suite --mode "$mode" \
  --command "${BENCH_COMMAND:-bench/run.sh $mode${*:+ $*}}" "${suite_args[@]}" "$@"
