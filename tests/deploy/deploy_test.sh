#!/usr/bin/env bash
# deploy test: builds the images of docker-compose.yml, runs the whole stack with 3 history-svc, 2 notifier and 2
# orders replicas under a project name of its own, and checks it from the host through the gateway's port published
# on 127.0.0.1 (never a container address). Always tears the stack down (containers, network, volumes).
# Auth is on, as an operator runs it: the test writes its own .env (a random NOTIGATE_JWT_SECRET, mode 0600, passed with
# --env-file so that an operator's .env beside docker-compose.yml is left alone) and mints its tokens with the image's
# `gateway mint-token`.
#
# Usage, from anywhere:  tests/deploy/deploy_test.sh          (ctest -L deploy runs it)
# Needs: root (it starts a Docker engine and installs docker.io / docker-compose / curl from Debian if missing),
#        ../shared/tools beside the repo (start-dockerd.sh, local-base-image.sh, compose-check.py).
# Env:   NOTIGATE_PORT   host port for the gateway (default: a free one)
#        NOTIGATE_TAG    tag of the images it builds (default deploy-test, so an operator's :latest is untouched)
#        DEPLOY_KEEP=1   leave the stack running for a look (then: docker-compose -p PROJECT down -v)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TOOLS=$(cd "$ROOT/../shared/tools" 2>/dev/null && pwd) || { echo "!! no ../shared/tools beside $ROOT" >&2; exit 1; }
cd "$ROOT"

N_HISTORY=3 N_NOTIFIER=2 N_ORDERS=2 N_MESSAGES=30
USERS=(alice bob carol)
PROJECT=ngdeploy$$
export NOTIGATE_TAG=${NOTIGATE_TAG:-deploy-test}
T0=$(date +%s)
WORK=$(mktemp -d /tmp/notigate-deploy.XXXXXX)
# the .env docker-compose.yml takes the secret from (README, Auth: how to make one)
NOTIGATE_JWT_SECRET=$(/usr/bin/python3 -c 'import secrets; print(secrets.token_urlsafe(48))')
(umask 077 && printf 'NOTIGATE_JWT_SECRET=%s\n' "$NOTIGATE_JWT_SECRET" >"$WORK/.env")
DC=(docker-compose --env-file "$WORK/.env" -f "$ROOT/docker-compose.yml" -p "$PROJECT")
checks=0

log() { echo ">> [$(date +%T) +$(($(date +%s) - T0))s] $*" >&2; }
ok() { checks=$((checks + 1)); echo "ok $checks - $*"; }
fail() { echo "!! FAIL: $*" >&2; exit 1; }

need=()
command -v curl >/dev/null || need+=(curl)
/usr/bin/python3 -c 'import json' 2>/dev/null || need+=(python3)
if [ ${#need[@]} -gt 0 ]; then
    log "apt-get install ${need[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# ---- engine, base image, offline checks ------------------------------------------------------------------------
"$TOOLS/start-dockerd.sh"   # installs docker.io + docker-compose when missing; no-op when an engine answers
if ! docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    log "making the local base image debian:bookworm-slim (no registry here)"
    "$TOOLS/local-base-image.sh" --docker --tag debian:bookworm --tag debian:bookworm-slim
fi
NOTIGATE_JWT_SECRET=$NOTIGATE_JWT_SECRET /usr/bin/python3 "$TOOLS/compose-check.py" docker-compose.yml
# without a secret the file does not even resolve: the gateway never runs without auth by accident
: >"$WORK/empty.env"
if env -u NOTIGATE_JWT_SECRET docker-compose --env-file "$WORK/empty.env" -f "$ROOT/docker-compose.yml" -p "$PROJECT" config >"$WORK/nosecret.txt" 2>&1; then
    fail "docker-compose config accepted the file without NOTIGATE_JWT_SECRET"
fi
grep -q NOTIGATE_JWT_SECRET "$WORK/nosecret.txt" || fail "docker-compose's refusal does not name NOTIGATE_JWT_SECRET: $(cat "$WORK/nosecret.txt")"
"${DC[@]}" config >/dev/null
v2=
if docker compose version >/dev/null 2>&1; then   # the v2 plugin, where installed, must accept the file too
    docker compose --env-file "$WORK/.env" -f "$ROOT/docker-compose.yml" -p "$PROJECT" config -q
    v2=" and docker compose (v2) config"
fi
ok "docker-compose.yml passes compose-check.py, docker-compose config${v2}; refused without NOTIGATE_JWT_SECRET"

# a run killed outright (e.g. by ctest's timeout) cannot tear down: remove stacks whose test process is gone
for p in $(docker ps -a --filter label=com.docker.compose.project --format '{{.Label "com.docker.compose.project"}}' | sort -u); do
    case $p in ngdeploy[0-9]*) ;; *) continue ;; esac
    kill -0 "${p#ngdeploy}" 2>/dev/null && continue
    log "removing the stack $p left by an earlier run"
    timeout 120 docker-compose --env-file "$WORK/.env" -f "$ROOT/docker-compose.yml" -p "$p" down -v --remove-orphans -t 2 >/dev/null 2>&1 || true
done

if [ -z "${NOTIGATE_PORT:-}" ]; then
    NOTIGATE_PORT=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
fi
export NOTIGATE_PORT
BASE=http://127.0.0.1:$NOTIGATE_PORT

cleanup() {
    rc=$?
    trap - EXIT INT TERM
    if [ $rc -ne 0 ]; then
        echo "!! deploy test failed (exit $rc); state of project $PROJECT:" >&2
        "${DC[@]}" ps >&2 || true
        "${DC[@]}" logs --no-color --tail=40 >&2 || true
    fi
    if [ -n "${DEPLOY_KEEP:-}" ]; then
        log "DEPLOY_KEEP: left running; stop with: docker-compose -p $PROJECT down -v --remove-orphans"
    else
        log "tearing down $PROJECT"
        timeout 120 "${DC[@]}" down -v --remove-orphans -t 5 >/dev/null 2>&1 || echo "!! down failed for $PROJECT" >&2
    fi
    rm -rf "$WORK"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build -----------------------------------------------------------------------------------------------------
log "building images (tag $NOTIGATE_TAG)"
t=$(date +%s)
timeout 600 "${DC[@]}" build >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; fail "docker-compose build"; }
BUILD_S=$(($(date +%s) - t))
ok "images built in ${BUILD_S}s: $(docker image inspect -f '{{.Size}}' "notigate:$NOTIGATE_TAG" | awk '{printf "notigate %.0f MB", $1/1e6}'), $(docker image inspect -f '{{.Size}}' "notigate-redis:$NOTIGATE_TAG" | awk '{printf "notigate-redis %.0f MB", $1/1e6}')"

for b in gateway notifier history-svc orders; do
    docker run --rm "notigate:$NOTIGATE_TAG" "$b" --help >/dev/null || fail "$b --help in the image"
done
[ "$(docker run --rm "notigate:$NOTIGATE_TAG" id -u)" != 0 ] || fail "the notigate image runs as root"
ok "all four binaries run in the image, as a non-root user"

# tokens, as an operator makes them: the image's gateway mint-token with the secret of .env (passed by name: not in ps)
mint() {
    NOTIGATE_JWT_SECRET=$NOTIGATE_JWT_SECRET docker run --rm -e NOTIGATE_JWT_SECRET "notigate:$NOTIGATE_TAG" gateway mint-token "$@" \
        || fail "gateway mint-token $*"
}
PUB_TOKEN=$(mint --sub deploy-publisher --scope publish --ttl 3600)
declare -A TOKEN
for user in "${USERS[@]}"; do TOKEN[$user]=$(mint --sub "$user" --ttl 3600); done
ok "tokens minted with the image's gateway mint-token"

# ---- up --------------------------------------------------------------------------------------------------------
log "up: project $PROJECT, gateway on $BASE, history-svc x$N_HISTORY, notifier x$N_NOTIFIER, orders x$N_ORDERS"
t=$(date +%s)
timeout 180 "${DC[@]}" up -d --scale history-svc=$N_HISTORY --scale notifier=$N_NOTIFIER --scale orders=$N_ORDERS \
    >"$WORK/up.log" 2>&1 || { cat "$WORK/up.log" >&2; fail "docker-compose up"; }

want=$((1 + 1 + N_HISTORY + N_NOTIFIER + N_ORDERS))
deadline=$(($(date +%s) + 180))
while :; do
    healthy=0 bad=
    for id in $("${DC[@]}" ps -q); do
        read -r name status health < <(docker inspect -f \
            '{{.Name}} {{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$id") || continue
        case $status/$health in
        running/healthy) healthy=$((healthy + 1)) ;;
        running/starting) ;;
        *) bad="$bad $name:$status/$health" ;;
        esac
    done
    ready=$(curl -s -o "$WORK/readyz.json" -w '%{http_code}' --max-time 3 "$BASE/readyz" || true)
    [ "$healthy" = "$want" ] && [ "$ready" = 200 ] && break
    # a container can be briefly unhealthy while redis or the gateway starts: give up only at the deadline
    [ "$(date +%s)" -lt "$deadline" ] || fail "after 180 s: $healthy/$want healthy, /readyz $ready ($(cat "$WORK/readyz.json" 2>/dev/null)),${bad:- nothing else wrong}"
    sleep 1
done
UP_S=$(($(date +%s) - t))
ok "all $want containers healthy and /readyz 200 after ${UP_S}s: $(cat "$WORK/readyz.json")"

code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "$BASE/healthz" || true)
[ "$code" = 200 ] || fail "/healthz answered $code"
ok "/healthz 200"

[ "$("${DC[@]}" exec -T redis redis-cli config get appendonly | tail -1)" = yes ] || fail "redis has no AOF"
ok "redis runs with appendonly yes"

# ---- traffic through the published port --------------------------------------------------------------------------
log "publishing $N_MESSAGES notifications"
: >"$WORK/published.tsv"
for i in $(seq 1 "$N_MESSAGES"); do
    user=${USERS[$((i % ${#USERS[@]}))]}
    msg="deploy test $PROJECT #$i"
    code=$(curl -s -o "$WORK/pub.json" -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $PUB_TOKEN" -d "{\"user_id\":\"$user\",\"message\":\"$msg\"}" "$BASE/v1/notifications" || true)
    [ "$code" = 201 ] || fail "POST /v1/notifications #$i answered $code: $(cat "$WORK/pub.json")"
    id=$(/usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); assert r["user_id"] == sys.argv[2] and "ts" in r; print(r["id"])' \
        "$WORK/pub.json" "$user") || fail "POST #$i: unexpected body $(cat "$WORK/pub.json")"
    printf '%s\t%s\t%s\n' "$user" "$id" "$msg" >>"$WORK/published.tsv"
done
ok "$N_MESSAGES POST /v1/notifications answered 201 with id, user_id and ts"

# Each notification is listed once: under "realtime" while a notifier holds it (published in the last
# REALTIME_WINDOW and unread), else under "historical". The notifiers follow a Redis stream, so they may lag a
# moment behind history-svc: retry a few seconds until every notification is realtime (both notifiers have it).
fetch_and_compare() {
    for user in "${USERS[@]}"; do
        code=$(curl -s -o "$WORK/list-$user.json" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer ${TOKEN[$user]}" \
            "$BASE/v1/users/$user/notifications?limit=100" || true)
        [ "$code" = 200 ] || fail "GET /v1/users/$user/notifications answered $code: $(cat "$WORK/list-$user.json")"
    done
    /usr/bin/python3 - "$WORK" "${USERS[@]}" <<'PY'
import json, sys
work, users = sys.argv[1], sys.argv[2:]
published = {}
for line in open(f"{work}/published.tsv"):
    user, id_, msg = line.rstrip("\n").split("\t")
    published.setdefault(user, {})[int(id_)] = msg
all_realtime = True
for user in users:
    doc = json.load(open(f"{work}/list-{user}.json"))
    for key in ("realtime", "historical"):
        if not isinstance(doc.get(key), list):
            sys.exit(f"{user}: no list {key!r} in {doc}")
    listed = [(n["id"], n["message"]) for n in doc["realtime"] + doc["historical"]]
    if len(listed) != len(set(i for i, _ in listed)):
        sys.exit(f"{user}: a notification is listed twice: {doc}")
    missing = {i: m for i, m in published[user].items() if (i, m) not in listed}
    if missing:
        sys.exit(f"{user}: not listed: {missing}; got {doc}")
    all_realtime &= {n["id"] for n in doc["realtime"]} >= set(published[user])
    print(f"   {user}: {len(published[user])} published, listed {len(doc['realtime'])} realtime + {len(doc['historical'])} historical")
sys.exit(0 if all_realtime else 3)
PY
}
deadline=$(($(date +%s) + 15))
while :; do
    rc=0
    fetch_and_compare >"$WORK/compare.txt" || rc=$?
    [ $rc = 0 ] && break
    [ $rc = 3 ] || { cat "$WORK/compare.txt" >&2; fail "fetched notifications do not match what was published"; }
    [ "$(date +%s)" -lt "$deadline" ] || { cat "$WORK/compare.txt" >&2; fail "after 15 s the notifiers still do not hold every notification"; }
    sleep 1
done
cat "$WORK/compare.txt"
ok "GET /v1/users/{$(IFS=,; echo "${USERS[*]}")}/notifications lists all $N_MESSAGES notifications, once each, all realtime"

# another user's token, no token: refused, and nothing of alice's in the answer
code=$(curl -s -o "$WORK/other.json" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer ${TOKEN[bob]}" "$BASE/v1/users/alice/notifications" || true)
[ "$code" = 403 ] && ! grep -q "deploy test" "$WORK/other.json" || fail "alice's list with bob's token answered $code: $(cat "$WORK/other.json")"
code=$(curl -s -o "$WORK/none.json" -w '%{http_code}' --max-time 5 "$BASE/v1/users/alice/notifications" || true)
[ "$code" = 401 ] || fail "alice's list without a token answered $code: $(cat "$WORK/none.json")"
code=$(curl -s -o "$WORK/none.json" -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
    -d '{"user_id":"alice","message":"forged"}' "$BASE/v1/notifications" || true)
[ "$code" = 401 ] || fail "a publish without a token answered $code: $(cat "$WORK/none.json")"
ok "alice's list: 403 with bob's token, 401 without one; a publish without a token 401"

# ---- metrics: the work was spread over the replicas ------------------------------------------------------------
code=$(curl -s -o "$WORK/metrics.txt" -w '%{http_code}' --max-time 5 "$BASE/metrics" || true)
[ "$code" = 200 ] || fail "/metrics answered $code"
grep '^notigate_worker_replica_replies_total' "$WORK/metrics.txt" | sed 's/^/   /'
served=$(grep -cE '^notigate_worker_replica_replies_total\{kind="history",replica="history-svc@[^"]+"\} [1-9]' "$WORK/metrics.txt" || true)
[ "$served" -gt 1 ] || fail "only $served history-svc replica(s) served requests"
ok "$served distinct history-svc replicas served requests (of $N_HISTORY)"

# ---- an order through the published port: the orders replicas dialed the gateway's ORDERS_BIND --------------------
replicas=$(sed -n 's/^notigate_worker_replicas{kind="orders"} //p' "$WORK/metrics.txt")
[ "$replicas" = "$N_ORDERS" ] || fail "the gateway sees $replicas orders replica(s), expected $N_ORDERS"
code=$(curl -s -o "$WORK/inventory.json" -w '%{http_code}' --max-time 5 "$BASE/v1/inventory" || true)
[ "$code" = 200 ] || fail "GET /v1/inventory answered $code: $(cat "$WORK/inventory.json")"
before=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["inventory"]["item1"])' "$WORK/inventory.json") \
    || fail "GET /v1/inventory: no item1 in $(cat "$WORK/inventory.json")"
order='{"customer_id":"alice","items":[{"product_id":"item1","quantity":2}],"total_amount":99.99}'
key="deploy-$PROJECT"
for attempt in 1 2; do
    code=$(curl -s -o "$WORK/order$attempt.json" -w '%{http_code}' --max-time 5 -H 'Content-Type: application/json' \
        -H "Authorization: Bearer ${TOKEN[alice]}" -H "Idempotency-Key: $key" -d "$order" "$BASE/v1/orders" || true)
    [ "$code" = 201 ] || fail "POST /v1/orders (attempt $attempt) answered $code: $(cat "$WORK/order$attempt.json")"
done
cmp -s "$WORK/order1.json" "$WORK/order2.json" || fail "the retry with the same Idempotency-Key answered differently"
order_id=$(/usr/bin/python3 -c 'import json, sys; r = json.load(open(sys.argv[1])); o = r["order"]
assert r["status"] == "success" and o["status"] == "completed" and o["customer_id"] == "alice" and "processed_at" in o
print(o["order_id"])' "$WORK/order1.json") || fail "POST /v1/orders: unexpected body $(cat "$WORK/order1.json")"
code=$(curl -s -o "$WORK/order.json" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer ${TOKEN[alice]}" "$BASE/v1/orders/$order_id" || true)
[ "$code" = 200 ] || fail "GET /v1/orders/$order_id answered $code"
code=$(curl -s -o "$WORK/order-bob.json" -w '%{http_code}' --max-time 5 -H "Authorization: Bearer ${TOKEN[bob]}" "$BASE/v1/orders/$order_id" || true)
[ "$code" = 403 ] || fail "GET /v1/orders/$order_id with bob's token answered $code: $(cat "$WORK/order-bob.json")"
after=$(curl -s --max-time 5 "$BASE/v1/inventory" | /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["inventory"]["item1"])')
[ "$after" = $((before - 2)) ] || fail "item1 went from $before to $after after one order of 2 (sent twice with one key)"
deadline=$(($(date +%s) + 10))
until curl -s --max-time 5 -H "Authorization: Bearer ${TOKEN[alice]}" "$BASE/v1/users/alice/notifications?limit=100" | grep -q "Order $order_id completed"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the order's notification is not in alice's list after 10 s"
    sleep 0.5
done
ok "order $order_id placed through $BASE (retried with its Idempotency-Key: one order), item1 $before -> $after, notification in alice's list"

log "deploy test passed: build ${BUILD_S}s, up to healthy+ready ${UP_S}s, whole test $(($(date +%s) - T0))s"
echo "$checks passed, 0 failed"
