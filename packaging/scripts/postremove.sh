#!/bin/sh
# Reloads systemd after the units are gone. The helexa user, its models
# and /etc/helexa stay (purge removes the configuration on Debian).
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
