#!/bin/sh
# Creates the helexa system user and gives it its state folder.
set -e
if ! getent group helexa >/dev/null 2>&1; then
	groupadd --system helexa
fi
if ! getent passwd helexa >/dev/null 2>&1; then
	nologin=$(command -v nologin || echo /bin/false)
	useradd --system --gid helexa --home-dir /var/lib/helexa --no-create-home \
		--shell "$nologin" --comment "helexa LLM server" helexa
fi
# GPU device nodes are group video or render on some distributions.
for g in video render; do
	if getent group "$g" >/dev/null 2>&1; then
		usermod -a -G "$g" helexa || true
	fi
done
chown helexa:helexa /var/lib/helexa /var/lib/helexa/models
chmod 0750 /var/lib/helexa
chown root:helexa /etc/helexa/helexa.toml /etc/helexa/helexa.env
chmod 0640 /etc/helexa/helexa.toml /etc/helexa/helexa.env
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
exit 0
