#!/bin/sh
# Container health check of the notigate image (installed as /usr/local/bin/notigate-healthcheck).
#   notigate-healthcheck gateway   GET /healthz on the gateway's own LISTEN port answers 200
#   notigate-healthcheck worker    the worker rewrote $HEALTH_FILE in the last 5 s (it does so every second
#                                  while it reaches Redis and a gateway, and removes the file while it does not)
# Exit 0 = healthy. Needs only bash and coreutils (no curl in the image).
set -u
case "${1:-}" in
gateway)
    port=${LISTEN:-0.0.0.0:8080}
    port=${port##*:}
    # shellcheck disable=SC2016  # $1 is expanded by the inner bash
    exec timeout 3 bash -c '
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
        printf "GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n" >&3
        IFS= read -r status <&3 || exit 1
        case $status in "HTTP/"*" 200"*) exit 0;; *) echo "healthz: $status"; exit 1;; esac' _ "$port"
    ;;
worker)
    f=${HEALTH_FILE:-}
    [ -n "$f" ] || { echo "HEALTH_FILE is not set"; exit 1; }
    [ -s "$f" ] || { echo "no $f: not connected to Redis or to the gateway (or not started)"; exit 1; }
    age=$(( $(date +%s%3N) - $(cat "$f") ))
    [ "$age" -lt 5000 ] || { echo "$f is ${age} ms old"; exit 1; }
    ;;
*)
    echo "usage: notigate-healthcheck gateway|worker" >&2
    exit 2
    ;;
esac
