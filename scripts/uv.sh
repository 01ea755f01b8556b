# Sourced by scripts/setup and scripts/lock: puts the pinned uv in .tools/ (from PyPI, with
# the machine's python3 and pip) and sets $UV. uv installs .venv from uv.lock.
UV_VERSION=0.13.8
UV=.tools/uv/bin/uv
# Never download a Python: .venv is made from the machine's python3 (3.11 or newer).
export UV_PYTHON_DOWNLOADS=never
export UV_PYTHON="${UV_PYTHON:-python3}"

ensure_uv() {
  if [ -x "$UV" ] && [ "$("$UV" --version | cut -d' ' -f2)" = "$UV_VERSION" ]; then
    return 0
  fi
  echo "==> installing uv $UV_VERSION into .tools/uv"
  rm -rf .tools/uv
  python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore --target .tools/uv "uv==$UV_VERSION" \
    2> >(grep -v "^WARNING: Location" >&2)
}
