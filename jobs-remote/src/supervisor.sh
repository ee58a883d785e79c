# jobctl's side of a detached remote job: POSIX sh, nothing to install.
# Run as: sh -c "$THIS" jobctl OP ID [ARGS...]; the job's folder is
# $HOME/.cache/jobctl/jobs/ID (mode 0700): stdout, stderr, pid (the process
# group of the job, led by the supervisor) and status (the exit status,
# written once the command ended; 128+N for death by signal N).
# dash's kill takes no `--`: a group is `kill -SIG -PGID`.
# Exit codes of this script are its own: 86 the folder is gone, 90 the
# folder cannot be made, 0 done.
op=$1 id=$2
shift 2
base=$HOME/.cache/jobctl/jobs
d=$base/$id
nap() { sleep 0.1 2>/dev/null || sleep 1; }
case $op in
start)
	# The command line comes on stdin; the user's shell runs it.
	cmd=$(cat)
	umask 077
	mkdir -p "$base" && mkdir "$d" && chmod 700 "$d" && cd "$d" || exit 90
	: >stdout && : >stderr || exit 90
	sup='trap : HUP INT TERM
echo "$$" >pid.tmp && mv pid.tmp pid
"${SHELL:-/bin/sh}" -c "$1" </dev/null >>stdout 2>>stderr &
c=$!
while :; do
	wait "$c"; s=$?
	kill -0 "$c" 2>/dev/null || break
done
echo "$s" >status.tmp && mv status.tmp status'
	# Its own session and process group: it outlives the connection.
	if command -v setsid >/dev/null 2>&1; then
		setsid sh -c "$sup" jobctl-supervisor "$cmd" </dev/null >/dev/null 2>&1 &
	else
		set -m
		sh -c "$sup" jobctl-supervisor "$cmd" </dev/null >/dev/null 2>&1 &
	fi
	i=0
	while [ ! -s pid ] && [ $i -lt 100 ]; do nap; i=$((i + 1)); done
	[ -s pid ] || exit 90
	cat pid
	;;
tail)
	# $1 $2: bytes of stdout and stderr already read. Streams the rest of
	# stdout to stdout and of stderr to stderr as they grow, until the
	# status is written and everything before it was sent.
	cd "$d" 2>/dev/null || exit 86
	o=$1 e=$2
	while :; do
		[ -f stdout ] || exit 86
		fin=0
		[ -f status ] && fin=1
		n=$(($(wc -c <stdout)))
		if [ "$n" -gt "$o" ]; then
			tail -c +$((o + 1)) stdout | head -c $((n - o)) || exit 0
			o=$n
		fi
		n=$(($(wc -c <stderr)))
		if [ "$n" -gt "$e" ]; then
			tail -c +$((e + 1)) stderr | head -c $((n - e)) >&2 || exit 0
			e=$n
		fi
		[ $fin = 1 ] && exit 0
		# The connection is gone when its sshd is.
		kill -0 "$PPID" 2>/dev/null || exit 0
		nap
	done
	;;
status)
	cat "$d/status" 2>/dev/null || exit 86
	;;
stop)
	# $1: seconds between SIGTERM and SIGKILL. Then the folder goes.
	[ -d "$d" ] || exit 86
	p=$(cat "$d/pid" 2>/dev/null)
	if [ -n "$p" ] && kill -0 "-$p" 2>/dev/null; then
		kill -TERM "-$p" 2>/dev/null
		kill -CONT "-$p" 2>/dev/null
		i=0
		while kill -0 "-$p" 2>/dev/null && [ $i -lt $(($1 * 10)) ]; do
			nap
			i=$((i + 1))
		done
		kill -KILL "-$p" 2>/dev/null && echo killed
	fi
	rm -rf "$d"
	;;
signal)
	# $1: STOP or CONT, to the job's whole group; nothing once it ended.
	[ -d "$d" ] || exit 86
	[ -f "$d/status" ] && exit 0
	p=$(cat "$d/pid" 2>/dev/null)
	[ -n "$p" ] || exit 86
	kill -"$1" "-$p" 2>/dev/null
	exit 0
	;;
remove)
	rm -rf "$d"
	;;
esac
