# Brings up PostgreSQL for Warden and exports DATABASE_URL. Sourced by scripts/run and
# scripts/test.
#
#   DATABASE_URL set            -> used as it is (the database is created if it is missing)
#   a server on 127.0.0.1:5432  -> used, with database $WARDEN_DB_NAME
#   PostgreSQL binaries present -> a project-local cluster under .pgdata/ on port 54329
#   none of these               -> PostgreSQL installed from the distribution's packages, then
#                                  the project-local cluster

WARDEN_DB_NAME="${WARDEN_DB_NAME:-warden}"
PG_LOCAL_PORT="${PG_LOCAL_PORT:-54329}"

say() { printf '==> %s\n' "$*" >&2; }

pg_bin_dir() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

install_postgres() {
  say "installing PostgreSQL from the distribution's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq postgresql postgresql-client >&2
}

ensure_client() {
  command -v psql >/dev/null 2>&1 && return 0
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 && apt-get install -y -qq postgresql-client >&2
}

# Runs a command as the cluster's owner: root may not run PostgreSQL.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start_local_cluster() {
  local bin root data
  bin=$(pg_bin_dir) || true
  if [ -z "$bin" ]; then
    install_postgres
    bin=$(pg_bin_dir)
  fi
  root="$(pwd)/.pgdata"
  data="$root/data"
  mkdir -p "$root"
  if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir "$root" postgres
    chown -R postgres "$root"
  fi
  if [ ! -s "$data/PG_VERSION" ]; then
    say "creating a project-local cluster in $data"
    as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
  fi
  if ! as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "starting the project-local cluster on 127.0.0.1:$PG_LOCAL_PORT"
    as_owner "$bin/pg_ctl" -D "$data" -l "$root/server.log" -w \
      -o "-h 127.0.0.1 -p $PG_LOCAL_PORT -k $root" start >/dev/null
  fi
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_LOCAL_PORT/$WARDEN_DB_NAME"
}

ensure_database() {
  # The server's maintenance database, to create ours from.
  local admin="${DATABASE_URL%/*}/postgres"
  local name="${DATABASE_URL##*/}"
  name="${name%%\?*}"
  if ! psql "$admin" -tAc "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1; then
    say "creating database $name"
    psql "$admin" -qc "CREATE DATABASE \"$name\"" >/dev/null
  fi
}

bring_up_postgres() {
  if [ -n "${DATABASE_URL:-}" ]; then
    say "using DATABASE_URL"
  elif command -v pg_isready >/dev/null 2>&1 && pg_isready -q -h 127.0.0.1 -p 5432; then
    say "using PostgreSQL on 127.0.0.1:5432"
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$WARDEN_DB_NAME"
  elif (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; then
    say "using PostgreSQL on 127.0.0.1:5432"
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$WARDEN_DB_NAME"
  else
    start_local_cluster
  fi
  ensure_client
  ensure_database
}
