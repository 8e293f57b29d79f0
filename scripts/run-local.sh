#!/usr/bin/env bash
# Runs the whole system on this machine: installs missing Debian packages, builds, starts a private redis-server
# (AOF persistence under data/redis), one notifier, one history-svc, one orders worker and the gateway, prints the URL,
# and stops everything on Ctrl-C. Auth is on: a random JWT secret is made once (data/jwt.secret, mode 0600) and demo
# tokens for alice, bob and a publisher are minted at every start (printed, and in data/tokens.env to source).
#   PORT (default 8080)        HTTP port of the gateway, on 127.0.0.1 unless HOST says otherwise
#   HOST (default 127.0.0.1)   address the gateway listens on
#   REDIS_PORT (default 6399)  the private Redis (loopback only)
#   DATA_DIR (default data/)   Redis data and the processes' logs
#   REDIS_APPENDFSYNC (always) Redis's AOF fsync policy: always, everysec or no (what each promises: README, Durability)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${PORT:-8080}; host=${HOST:-127.0.0.1}; redis_port=${REDIS_PORT:-6399}
data=${DATA_DIR:-$root/data}
appendfsync=${REDIS_APPENDFSYNC:-always}
case "$appendfsync" in
  always | everysec | no) ;;
  *) echo "!! REDIS_APPENDFSYNC must be always, everysec or no (got '$appendfsync')" >&2; exit 2 ;;
esac
notifier_port=${NOTIFIER_PORT:-7101}; history_port=${HISTORY_PORT:-7102}; orders_port=${ORDERS_PORT:-7103}

"$root/scripts/deps.sh" build
"$root/scripts/build.sh"
bin=${BUILD_DIR:-$root/build}

mkdir -p "$data/redis" "$data/logs"

# the gateway's JWT secret: made once, kept with the data, readable by its owner only
secret_file="$data/jwt.secret"
if [ ! -s "$secret_file" ]; then
  (umask 077 && head -c 48 /dev/urandom | base64 | tr -d '\n/+=' >"$secret_file")
  echo ">> made a JWT secret in $secret_file"
fi
chmod 600 "$secret_file"
mint() { "$bin/gateway" mint-token --jwt-secret-file "$secret_file" --ttl 86400 "$@"; }
alice_token=$(mint --sub alice); bob_token=$(mint --sub bob); publisher_token=$(mint --sub demo-publisher --scope publish)
(umask 077 && cat >"$data/tokens.env" <<TOKENS
# demo tokens for the local gateway, valid 24 hours (made by scripts/run-local.sh at each start)
export ALICE_TOKEN=$alice_token
export BOB_TOKEN=$bob_token
export PUBLISHER_TOKEN=$publisher_token
TOKENS
)
pids=()
stop() {
  trap - INT TERM EXIT
  echo; echo ">> stopping"
  for ((i=${#pids[@]}-1; i>=0; i--)); do kill -TERM "${pids[i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo ">> stopped; data kept in $data"
  exit "$1"
}
trap 'stop 0' INT TERM  # Ctrl-C: a requested stop
trap 'stop 1' EXIT      # anything else that ends the script is a failure

redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$data/redis" --appendonly yes --appendfsync "$appendfsync" \
  --save "" --protected-mode yes --logfile "$data/logs/redis.log" &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done

"$bin/gateway" --jwt-secret-file "$secret_file" --listen "$host:$port" --notifier-bind "tcp://127.0.0.1:$notifier_port" \
  --history-bind "tcp://127.0.0.1:$history_port" --orders-bind "tcp://127.0.0.1:$orders_port" 2>>"$data/logs/gateway.log" &
pids+=($!)
"$bin/history-svc" --gateway "tcp://127.0.0.1:$history_port" --redis-url "redis://127.0.0.1:$redis_port" \
  2>>"$data/logs/history-svc.log" &
pids+=($!)
"$bin/notifier" --gateway "tcp://127.0.0.1:$notifier_port" --redis-url "redis://127.0.0.1:$redis_port" \
  2>>"$data/logs/notifier.log" &
pids+=($!)
"$bin/orders" --gateway "tcp://127.0.0.1:$orders_port" --redis-url "redis://127.0.0.1:$redis_port" \
  2>>"$data/logs/orders.log" &
pids+=($!)

url="http://$host:$port"
for _ in $(seq 100); do
  curl -fsS "$url/readyz" >/dev/null 2>&1 && break
  for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || { echo "!! a process exited; see $data/logs" >&2; tail -n 5 "$data"/logs/*.log >&2; exit 1; }; done
  sleep 0.1
done
curl -fsS "$url/readyz" >/dev/null || { echo "!! not ready; see $data/logs" >&2; exit 1; }

cat <<MSG
notigate is running at $url (auth on; demo tokens valid 24 h)
  tokens:   source $data/tokens.env     # ALICE_TOKEN, BOB_TOKEN, PUBLISHER_TOKEN, or copy them:
            ALICE_TOKEN=$alice_token
            BOB_TOKEN=$bob_token
            PUBLISHER_TOKEN=$publisher_token
  publish:  curl -X POST $url/v1/notifications -H "Authorization: Bearer \$PUBLISHER_TOKEN" -d '{"user_id":"alice","message":"hello"}'
  fetch:    curl -H "Authorization: Bearer \$ALICE_TOKEN" '$url/v1/users/alice/notifications'
  refused:  curl -H "Authorization: Bearer \$BOB_TOKEN" '$url/v1/users/alice/notifications'     # 403: not bob's
  order:    curl -X POST $url/v1/orders -H "Authorization: Bearer \$ALICE_TOKEN" -d '{"customer_id":"alice","items":[{"product_id":"item1","quantity":2}],"total_amount":99.99}'
  stock:    curl $url/v1/inventory
  demo page, one tab each (chat with each other, follow your notifications, publish with the publisher token):
            $url/?token=$alice_token&publish_token=$publisher_token
            $url/?token=$bob_token&publish_token=$publisher_token
  more:     $bin/gateway mint-token --jwt-secret-file $secret_file --sub carol [--scope publish] [--ttl 3600]
  logs:     $data/logs/   (Ctrl-C stops everything)
MSG
wait -n "${pids[@]}" || true
echo "!! a process exited; see $data/logs" >&2
exit 1
