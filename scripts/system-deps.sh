#!/bin/sh
# Install the Debian packages mynacard needs, when we can (root + apt-get); otherwise say what is missing.
set -u
need=""
python3 -c 'import ensurepip, venv' 2>/dev/null || need="$need python3-venv"
command -v pcscd >/dev/null 2>&1 || [ -x /usr/sbin/pcscd ] || need="$need pcscd"
[ -e /usr/lib/pcsc/drivers/serial/libifdvpcd.so ] || ls /usr/lib/pcsc/drivers/serial/*vpcd* >/dev/null 2>&1 || need="$need vsmartcard-vpcd"
command -v opensc-tool >/dev/null 2>&1 || need="$need opensc"
[ -e /usr/include/PCSC/winscard.h ] || need="$need libpcsclite-dev"
command -v openssl >/dev/null 2>&1 || need="$need openssl"
# The apps' shared-database tests start a private PostgreSQL server (Debian keeps it here).
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need="$need postgresql"
# The shelter's staff page is tested in Debian's headless Chromium (driven by chromedriver);
# a Japanese font so the screenshots show text, not boxes.
[ -x /usr/bin/chromium ] || need="$need chromium"
[ -x /usr/bin/chromedriver ] || need="$need chromium-driver"
[ -e /usr/share/fonts/opentype/ipafont-gothic/ipag.ttf ] || need="$need fonts-ipafont-gothic"
command -v ssh-keygen >/dev/null 2>&1 || need="$need openssh-client"
# pyscard has no Linux wheel: building it needs a C compiler and the Python headers.
command -v gcc >/dev/null 2>&1 || need="$need gcc"
python3 -c 'import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null || need="$need python3-dev"
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages:$need"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $need pkg-config >/dev/null; }; then
        echo "note: apt-get could not install:$need (PC/SC and PostgreSQL tests will be skipped, or fail under CI)"
    fi
else
    echo "note: missing system packages:$need (install them as root; PC/SC and PostgreSQL tests will be skipped)"
fi
exit 0
