#!/bin/sh
# install-check.sh PACKAGE.deb: installs the package and runs the installed
# binary. As root (or with password-less sudo) it installs for real, checks
# the helexa user, the state folder, the configuration and the units, and
# purges the package again (HELEXA_KEEP_INSTALLED=1 keeps it). Otherwise it
# unpacks the package and runs the binary from there.
set -eu
deb=${1:?usage: install-check.sh PACKAGE.deb}
if [ ! -f "$deb" ]; then
	echo "no package $deb (run make packages)" >&2
	exit 1
fi
sudo=""
if [ "$(id -u)" != 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo="sudo -n"
	else
		echo "neither root nor sudo: unpacking $deb instead of installing it"
		d=$(mktemp -d)
		trap 'rm -rf "$d"' EXIT
		dpkg-deb -x "$deb" "$d"
		"$d/usr/bin/helexa" version
		exit 0
	fi
fi
if [ -e /usr/bin/helexa ] && ! dpkg -S /usr/bin/helexa >/dev/null 2>&1; then
	echo "/usr/bin/helexa exists and no package owns it: not installing over it" >&2
	exit 1
fi
$sudo env DEBIAN_FRONTEND=noninteractive dpkg -i "$deb"
cleanup() {
	if [ "${HELEXA_KEEP_INSTALLED:-}" != 1 ]; then
		$sudo dpkg --purge helexa >/dev/null
	fi
}
trap cleanup EXIT
/usr/bin/helexa version
getent passwd helexa
test "$(stat -c %U:%G /var/lib/helexa/models)" = helexa:helexa
test "$(stat -c %G:%a /etc/helexa/helexa.toml)" = helexa:640
if command -v systemd-analyze >/dev/null 2>&1; then
	systemd-analyze verify /usr/lib/systemd/system/helexa-gateway.service /usr/lib/systemd/system/helexa-neuron.service
fi
echo "install check: $deb installed, helexa user and folders in place, units verified"
