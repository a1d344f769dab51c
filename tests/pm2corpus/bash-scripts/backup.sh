# A shell loop kept alive by PM2 (no exec bit, no #! line: PM2 runs .sh files with bash).
target="$1"
trap 'echo "backup-loop: SIGINT, last run finished"; exit 0' INT
echo "backup-loop: backing up to $target"
while true; do
  sleep 0.2 &
  wait $!
done
