#!/bin/sh
# Stops the services when the package is removed (not on upgrade).
# deb: "remove"; rpm: 0 packages left.
set -e
case "$1" in
remove | 0)
	if [ -d /run/systemd/system ]; then
		systemctl stop helexa-gateway.service helexa-neuron.service >/dev/null 2>&1 || true
		systemctl disable helexa-gateway.service helexa-neuron.service >/dev/null 2>&1 || true
	fi
	;;
esac
exit 0
