# Brings up NATS with JetStream for the tests that publish to it: the server named by
# WARDEN_TEST_NATS_URL if it answers, else one on 127.0.0.1:4222 (installed from the
# distribution's packages when missing), started with a store under target/.
# shellcheck shell=bash

nats_answers() {
  local host=$1 port=$2
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

bring_up_nats() {
  local url=${WARDEN_TEST_NATS_URL:-nats://127.0.0.1:4222}
  local address=${url#nats://}
  local host=${address%:*} port=${address##*:}
  export WARDEN_TEST_NATS_URL=$url
  if nats_answers "$host" "$port"; then
    return 0
  fi
  if ! command -v nats-server >/dev/null 2>&1 && [ ! -x /usr/sbin/nats-server ]; then
    say "installing nats-server"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 && apt-get install -y -qq nats-server >&2
  fi
  local server
  server=$(command -v nats-server || echo /usr/sbin/nats-server)
  local store=target/nats
  mkdir -p "$store"
  say "starting nats-server -js on $host:$port"
  nohup "$server" -js -a "$host" -p "$port" -sd "$store" >"$store/server.log" 2>&1 &
  for _ in $(seq 1 50); do
    nats_answers "$host" "$port" && return 0
    sleep 0.2
  done
  echo "nats-server did not start; see $store/server.log" >&2
  return 1
}
