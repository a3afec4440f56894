#!/bin/sh
# sshd-install.sh installs Debian's OpenSSH server for the sshtraffic interop
# tests (sshtraffic/sshdtest). It is idempotent: when /usr/sbin/sshd already
# exists it only makes sure the privilege-separation directory is present.
# The tests start their own sshd on 127.0.0.1 with a generated config; this
# script does not enable or start the system service.
set -eu

if [ ! -x /usr/sbin/sshd ]; then
	SUDO=""
	if [ "$(id -u)" -ne 0 ]; then
		SUDO="sudo"
	fi
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -q
	# policy-rc.d keeps the package's postinst from starting the system sshd
	# inside containers; the tests never need it running.
	$SUDO apt-get install -y -q --no-install-recommends openssh-server openssh-client
fi

# sshd run as root refuses to start without its privilege-separation directory.
if [ "$(id -u)" -eq 0 ]; then
	mkdir -p /run/sshd
	chmod 0755 /run/sshd
fi

/usr/sbin/sshd -V 2>&1 | head -n 1 || true
