# Sourced by test.sh: the Debian packages the tests need, installed when missing and the machine allows
# (root with apt-get).  Where they cannot be installed, the tests that need them fail and say why.
#   mesa-vulkan-drivers: lavapipe, the software Vulkan adapter that the webgpu backend's tests run on
#   chromium: headless Chromium, whose WebGPU (and its WGSL compiler, Tint) runs the browser tests
#   strace: watches a protected model's load for file writes (tests/test_protected_models.py)
SYSTEM_PACKAGES=(mesa-vulkan-drivers chromium strace)
_missing=()
for _pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$_pkg" 2>/dev/null | grep -q "install ok installed" || _missing+=("$_pkg")
done
if [ "${#_missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "[setup] installing Debian packages: ${_missing[*]}" >&2
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            "${_missing[@]}"; } >/tmp/webml-apt.log 2>&1 \
            || { cat /tmp/webml-apt.log >&2; echo "[setup] could not install ${_missing[*]} (log above)" >&2; }
    else
        echo "[setup] missing Debian packages ${_missing[*]} (not root or no apt-get): tests that need them fail" >&2
    fi
fi
unset _missing _pkg
