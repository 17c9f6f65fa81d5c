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
command -v ssh-keygen >/dev/null 2>&1 || need="$need openssh-client"
[ -z "$need" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing system packages:$need"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null && apt-get install -y -qq --no-install-recommends $need gcc pkg-config >/dev/null
else
    echo "note: missing system packages:$need (install them as root; PC/SC interop tests will be skipped)"
fi
exit 0
