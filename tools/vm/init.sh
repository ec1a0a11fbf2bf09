#!/bin/busybox sh
# PID 1 of the oomdvm guest (tools/vm/oomdvm.py writes it into the initramfs).
#
# Loads the virtio/9p/overlay/zram modules, mounts the host's / (read-only 9p, with a
# tmpfs overlay on top) as the new root, mounts a pure cgroup2 hierarchy, proc, sys,
# dev, /run and the shares, turns swap on, runs the job chrooted into the new root,
# writes its exit status to the shared out dir and powers off. PID 1 must never exit
# (the kernel would panic), so every path ends in poweroff.

/bin/busybox --install -s /bin
export PATH=/bin
R=/newroot

say() { echo "oomdvm-init: $*"; }
halt() {
	sync
	poweroff -f
	sleep 2
	echo o >/proc/sysrq-trigger
	while :; do sleep 60; done
}
fail() {
	say "FATAL: $*"
	halt
}
ninep() { # ninep TAG DIR [extra options]
	mount -t 9p -o "trans=virtio,version=9p2000.L,msize=262144${3:+,$3}" "$1" "$2"
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
echo 1 >/proc/sys/kernel/sysrq

for m in $(cat /lib/modules/order); do
	insmod "/lib/modules/$m.ko" || fail "insmod $m"
done

ninep oomdvm-out /mnt/out || fail "cannot mount the out share"
M=/mnt/out/.oomdvm
. "$M/config.sh" || fail "cannot read $M/config.sh"

# The host's /: read-only; with the overlay, guest writes land in a tmpfs.
if [ "$OOMDVM_ROOT" = overlay ]; then
	ninep oomdvm-root /mnt/lower ro,cache=loose || fail "cannot mount the host root"
	mount -t tmpfs -o mode=0755 tmpfs /mnt/rw
	mkdir -p /mnt/rw/upper /mnt/rw/work
	mount -t overlay -o lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work \
		overlay $R || fail "cannot mount the overlay root"
else
	ninep oomdvm-root $R ro,cache=loose || fail "cannot mount the host root"
fi

mount -t proc proc $R/proc
mount -t sysfs sysfs $R/sys
mount -t devtmpfs devtmpfs $R/dev
mkdir -p $R/dev/pts $R/dev/shm
mount -t devpts devpts $R/dev/pts
mount -t tmpfs -o mode=1777 tmpfs $R/dev/shm
mount -t cgroup2 -o nsdelegate,memory_recursiveprot cgroup2 $R/sys/fs/cgroup ||
	fail "cannot mount cgroup2"
echo "+cpu +io +memory +pids" >$R/sys/fs/cgroup/cgroup.subtree_control
mount -t tmpfs -o mode=0755 tmpfs $R/run
if [ "$OOMDVM_ROOT" != overlay ]; then
	mount -t tmpfs -o mode=1777 tmpfs $R/tmp
	mount -t tmpfs -o mode=1777 tmpfs $R/var/tmp
fi
while read -r tag dir; do
	[ -n "$tag" ] || continue
	mkdir -p "$R$dir" 2>/dev/null
	ninep "$tag" "$R$dir" || fail "cannot mount share $dir"
done <"$M/mounts"
mkdir -p "$R$OOMDVM_OUT" 2>/dev/null
mount --move /mnt/out "$R$OOMDVM_OUT" || fail "cannot move the out share to $OOMDVM_OUT"
M="$R$OOMDVM_OUT/.oomdvm"

case "$OOMDVM_SWAP" in
disk)
	mkswap /dev/vda >/dev/null && swapon /dev/vda || fail "cannot turn on disk swap"
	;;
zram)
	echo "$OOMDVM_SWAP_BYTES" >/sys/block/zram0/disksize &&
		mkswap /dev/zram0 >/dev/null && swapon /dev/zram0 || fail "cannot turn on zram swap"
	;;
esac

if [ "$OOMDVM_INIT" = systemd ]; then
	# systemd as PID 1 of the new root: it keeps the mounts above (cgroup2, /run, ...)
	# and starts only the job unit oomdvm.py wrote (DefaultDependencies=no); the unit
	# runs the job, writes its rc and powers off (oomdvm.py, "systemd mode").
	mkdir -p $R/run/systemd/system
	cp "$M/oomdvm-job.service" $R/run/systemd/system/ || fail "cannot install the job unit"
	say "switching to systemd (uptime $(cut -d' ' -f1 /proc/uptime)s)"
	exec switch_root $R /lib/systemd/systemd --unit=oomdvm-job.service
	fail "cannot switch_root into systemd"
fi

say "job start (uptime $(cut -d' ' -f1 /proc/uptime)s)"
mkfifo /job.fifo
tee "$M/job.log" </job.fifo &
tee_pid=$!
(
	chroot $R /usr/bin/env -i /bin/sh "$OOMDVM_OUT/.oomdvm/job.sh" </dev/null
	echo $? >/job.rc
) >/job.fifo 2>&1
# Processes the job left behind keep the fifo open: give them a moment, then kill
# everything but PID 1 (tee included; it has copied what they wrote by then).
i=0
while kill -0 $tee_pid 2>/dev/null && [ $i -lt 20 ]; do
	usleep 100000
	i=$((i + 1))
done
if kill -0 $tee_pid 2>/dev/null; then
	say "the job left processes behind; killing them"
	kill -KILL -1
fi
wait
rc=$(cat /job.rc 2>/dev/null)
echo "${rc:=125}" >"$M/rc"
say "job exit rc=$rc"
halt
