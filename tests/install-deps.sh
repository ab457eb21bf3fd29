#!/usr/bin/env bash
# Installs, when missing, the Debian packages that building and testing sbc need:
#   sip-tester (SIPp), sipsak, openssl (s_client): the real peers of the black-box tests;
#   sipvicious (svmap, svwar, svcrack): the attacker of tests/security.rs;
#   iproute2 (ip): the network namespaces tests/security.rs creates for it;
#   baresip-core (the softphone, with its aufile, aubridge, sndfile and g711 modules) and
#   sox (writes the tones it plays, decodes what it recorded): tests/softphones.rs;
#   linphone-cli (linphone-daemon): the SHA-256 digest client of tests/security.rs;
#   libsrtp2-dev: the independent SRTP implementation the relay is checked against
#   (media-relay tests and bench/srtp.sh compile small C peers with it);
#   pkg-config, libssl-dev, gcc, libc6-dev: to build the openssl crate;
#   prometheus (for promtool, which checks the /metrics text format): tests/admin_metrics.rs;
#   python3 and python3-venv, then schemathesis from PyPI in a virtual environment under
#   target/tools/schemathesis (pinned version): tests/admin_openapi.rs;
#   python3-jwt, python3-cryptography (PyJWT): the independent PASSporT implementation
#   tests/identity.rs checks the SBC's STIR/SHAKEN signatures against (and the reverse).
# Uses sudo only when not root. Safe to run repeatedly (does nothing when all are there).
set -euo pipefail

missing=()
have_command() { command -v "$1" >/dev/null 2>&1; }
have_package() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

have_command sipp || missing+=(sip-tester)
have_command sipsak || missing+=(sipsak)
have_command svcrack || missing+=(sipvicious)
have_command ip || missing+=(iproute2)
have_command openssl || missing+=(openssl)
have_command baresip || missing+=(baresip-core)
have_command linphone-daemon || missing+=(linphone-cli)
have_command sox || missing+=(sox)
have_command pkg-config || missing+=(pkg-config)
have_package libssl-dev || missing+=(libssl-dev)
have_package libsrtp2-dev || missing+=(libsrtp2-dev)
have_command cc || missing+=(gcc libc6-dev)
have_package python3-jwt || missing+=(python3-jwt)
have_package python3-cryptography || missing+=(python3-cryptography)
have_command promtool || missing+=(prometheus)
have_command python3 || missing+=(python3)
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 || missing+=(python3-venv)

# schemathesis (PyPI) lives in its own virtual environment, so nothing is installed into
# the system's Python; the tests look for it at this path.
SCHEMATHESIS_VERSION=4.32.5
tools="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/target/tools"
install_schemathesis() {
    local venv="$tools/schemathesis"
    if [[ -x "$venv/bin/schemathesis" ]] &&
        "$venv/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('schemathesis') != '$SCHEMATHESIS_VERSION')" 2>/dev/null; then
        return 0
    fi
    echo "install-deps: installing schemathesis $SCHEMATHESIS_VERSION into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$tools"
    python3 -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "schemathesis==$SCHEMATHESIS_VERSION"
}

if ((${#missing[@]} == 0)); then
    install_schemathesis
    exit 0
fi

if ! have_command apt-get; then
    echo "install-deps: missing ${missing[*]} and apt-get is not available (Debian expected)" >&2
    exit 1
fi

as_root=()
if [[ $(id -u) -ne 0 ]]; then
    as_root=(sudo)
fi

echo "install-deps: installing ${missing[*]}" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
install_schemathesis
