#!/usr/bin/env bash
# Local backing services for lockflow, on 127.0.0.1, without Docker:
#   Kafka 4.x (KRaft, one combined broker+controller), PostgreSQL 15, Redis,
#   MariaDB (a database *source*: the connector's tests read real tables from it),
#   SeaweedFS (an S3-compatible object store: the artifact store of distributed mode),
#   built from its Go module,
#   Jaeger v2 (traces over OTLP, in-memory storage), built from its Go module,
#   Apicurio Registry 2.4.2 (a Confluent-compatible schema registry, H2 in memory: the Avro
#   stream tests), built from Maven Central with Quarkus's Maven plugin (scripts/registry/).
#
# Usage: scripts/services.sh up|down|status|env
#   up      install/download what is missing, start what is not running, wait
#           until each answers, then print the endpoints as shell exports
#           (progress goes to stderr, so `eval "$(scripts/services.sh up)"` works)
#   down    stop all seven and wait for them to exit (data is kept)
#   status  one line per service; exits 1 if any is down
#   env     print the endpoint exports only: eval "$(scripts/services.sh env)"
#
# Environment (all optional):
#   LOCKFLOW_CACHE           downloads (Kafka jars, the weed binary)  default ~/.cache/lockflow
#   LOCKFLOW_STATE           data, logs, pid files      default ~/.cache/lockflow/state
#   LOCKFLOW_KAFKA_VERSION   default 4.1.1
#   LOCKFLOW_KAFKA_PORT      default 9092 (PLAINTEXT)
#   LOCKFLOW_KAFKA_CONTROLLER_PORT  default 9093 (KRaft controller)
#   LOCKFLOW_PG_PORT         default 5432
#   LOCKFLOW_REDIS_PORT      default 6379
#   LOCKFLOW_MARIADB_PORT    default 3306
#   LOCKFLOW_SEAWEEDFS_VERSION  Go module version of github.com/seaweedfs/seaweedfs
#   LOCKFLOW_S3_PORT         default 8333 (S3 API); SeaweedFS's master, volume and filer take
#   LOCKFLOW_SEAWEEDFS_PORTS default "9333 8380 8888", each also port+10000 for gRPC
#   LOCKFLOW_JAEGER_VERSION  Go module version of github.com/jaegertracing/jaeger, default v1.76.0
#   LOCKFLOW_JAEGER_PORTS    default "4318 4317 16686 13133": OTLP/HTTP, OTLP/gRPC, query API + UI, health
#   LOCKFLOW_REGISTRY_PORT   default 8681 (the schema registry's HTTP API, /apis/ccompat/v6)
#   LOCKFLOW_SERVICES_TIMEOUT  seconds each service may take to answer, default 120
#
# Meant for root on Debian 12 (dev machines and CI); as a normal user it works
# too if the packages are already installed.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
: "${HOME:=$(getent passwd "$(id -un)" | cut -d: -f6)}"

HOST=127.0.0.1
CACHE_DIR=${LOCKFLOW_CACHE:-$HOME/.cache/lockflow}
STATE_DIR=${LOCKFLOW_STATE:-$HOME/.cache/lockflow/state}
TIMEOUT=${LOCKFLOW_SERVICES_TIMEOUT:-120}

KAFKA_VERSION=${LOCKFLOW_KAFKA_VERSION:-4.1.1}
KAFKA_PORT=${LOCKFLOW_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${LOCKFLOW_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_HOME=$CACHE_DIR/kafka-$KAFKA_VERSION
KAFKA_LIBS=$KAFKA_HOME/libs
KAFKA_STATE=$STATE_DIR/kafka
KAFKA_DATA=$KAFKA_STATE/data
KAFKA_CONF=$KAFKA_STATE/server.properties
KAFKA_LOG4J=$KAFKA_STATE/log4j2.xml
KAFKA_LOG=$KAFKA_STATE/server.log
KAFKA_PIDFILE=$KAFKA_STATE/kafka.pid

PG_PORT=${LOCKFLOW_PG_PORT:-5432}
PG_BIN=${LOCKFLOW_PG_BIN:-/usr/lib/postgresql/15/bin}
PG_LINK=$STATE_DIR/pg        # the pg dir itself, or a symlink to it (see pg_layout)

REDIS_PORT=${LOCKFLOW_REDIS_PORT:-6379}
REDIS_STATE=$STATE_DIR/redis
REDIS_PIDFILE=$REDIS_STATE/redis.pid
REDIS_LOG=$REDIS_STATE/redis.log

MARIADB_PORT=${LOCKFLOW_MARIADB_PORT:-3306}

SEAWEEDFS_VERSION=${LOCKFLOW_SEAWEEDFS_VERSION:-v0.0.0-20261109003541-7506e5f91cd6}
SEAWEEDFS_HOME=$CACHE_DIR/seaweedfs-$SEAWEEDFS_VERSION
WEED=$SEAWEEDFS_HOME/bin/weed
S3_PORT=${LOCKFLOW_S3_PORT:-8333}
read -r SEAWEED_MASTER_PORT SEAWEED_VOLUME_PORT SEAWEED_FILER_PORT <<<"${LOCKFLOW_SEAWEEDFS_PORTS:-9333 8380 8888}"
SEAWEED_STATE=$STATE_DIR/seaweedfs
SEAWEED_DATA=$SEAWEED_STATE/data
SEAWEED_LOG=$SEAWEED_STATE/weed.log
SEAWEED_PIDFILE=$SEAWEED_STATE/weed.pid
SEAWEED_S3_CONFIG=$SEAWEED_STATE/s3.json
# The one identity of the local store (loopback only, like the databases' passwords here).
S3_ACCESS_KEY=lockflow
S3_SECRET_KEY=lockflow-s3-secret
# Jaeger v2's Go module is tagged v1.x (its path has no /v2): v1.76.0 is Jaeger 2.13.0, the
# version docker-compose.yml runs. Built once per version into the cache.
JAEGER_VERSION=${LOCKFLOW_JAEGER_VERSION:-v1.76.0}
JAEGER_HOME=$CACHE_DIR/jaeger-$JAEGER_VERSION
JAEGER=$JAEGER_HOME/bin/jaeger
read -r JAEGER_OTLP_PORT JAEGER_GRPC_PORT JAEGER_QUERY_PORT JAEGER_HEALTH_PORT <<<"${LOCKFLOW_JAEGER_PORTS:-4318 4317 16686 13133}"
JAEGER_STATE=$STATE_DIR/jaeger
JAEGER_CONF=$JAEGER_STATE/config.yaml
JAEGER_LOG=$JAEGER_STATE/jaeger.log
JAEGER_PIDFILE=$JAEGER_STATE/jaeger.pid
REGISTRY_VERSION=2.4.2.Final  # pinned with scripts/registry/pom.xml (its substitutions fit this one)
REGISTRY_PORT=${LOCKFLOW_REGISTRY_PORT:-8681}
REGISTRY_HOME=$CACHE_DIR/apicurio-registry-$REGISTRY_VERSION
REGISTRY_APP=$REGISTRY_HOME/quarkus-app
REGISTRY_STATE=$STATE_DIR/registry
REGISTRY_LOG=$REGISTRY_STATE/registry.log
REGISTRY_PIDFILE=$REGISTRY_STATE/registry.pid
MARIADBD=${LOCKFLOW_MARIADBD:-/usr/sbin/mariadbd}
MARIADB_LINK=$STATE_DIR/mariadb  # the MariaDB dir itself, or a symlink to it (see mariadb_layout)

# ---------------------------------------------------------------- helpers

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# die_with_log SERVICE LOGFILE MESSAGE: fail, showing the end of the service's log.
die_with_log() {
    log "ERROR: $1: $3"
    if [[ -s $2 ]]; then
        log "last lines of $2:"
        # (the sed also drops ANSI colour codes, which mvn 3.8 emits even with -B)
        tail -n 40 "$2" | sed -e 's/\x1b\[[0-9;]*m//g' -e 's/^/    /' >&2
    fi
    exit 1
}

# port_open PORT: something accepts TCP connections on HOST:PORT.
port_open() { (exec 3<>"/dev/tcp/$HOST/$1") 2>/dev/null; }

# pid_alive PIDFILE PATTERN: the pid in PIDFILE is running and its command line
# contains PATTERN (guards against a stale pid file whose pid got reused).
pid_alive() {
    local pid
    pid=$(cat "$1" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$2"
}

# stop_pid NAME PIDFILE PATTERN: SIGTERM, wait up to 60 s, then SIGKILL.
stop_pid() {
    local name=$1 pidfile=$2 pattern=$3 pid i
    if ! pid_alive "$pidfile" "$pattern"; then
        rm -f "$pidfile"
        return 0
    fi
    pid=$(cat "$pidfile")
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 120; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not exit after 60 s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 1
    fi
    rm -f "$pidfile"
}

# check_port_free NAME PORT: before starting, make sure no foreign process has
# the port (e.g. Debian's own postgres/redis instance), or the start fails obscurely.
check_port_free() {
    if port_open "$2"; then
        die "$1: port $HOST:$2 is already taken by a process this script did not start;" \
            "stop it or pick another port (LOCKFLOW_*_PORT)"
    fi
}

# apt_install PKG...: install Debian packages (root only).
apt_install() {
    [[ $EUID -eq 0 ]] || die "missing $*; install it: sudo apt-get install $*"
    log "installing $* with apt-get"
    (
        # Debian starts a package's default instance on install (a 'main'
        # cluster on 5432, redis on 6379), which would take our ports. A
        # policy-rc.d that exits 101 vetoes that (Docker images ship one).
        policy=/usr/sbin/policy-rc.d
        if [[ ! -e $policy ]]; then
            trap 'rm -f "$policy"' EXIT
            printf '#!/bin/sh\nexit 101\n' >"$policy"
            chmod 755 "$policy"
        fi
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    ) || die "apt-get install $* failed"
}

ensure_java() {
    command -v java >/dev/null && command -v mvn >/dev/null && return
    apt_install openjdk-17-jdk-headless maven
}

# ---------------------------------------------------------------- Kafka

# Java options for one-shot CLI tools: small, quick to start, quiet on stdout.
KAFKA_TOOL_OPTS=(-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
    -Dlockflow.kafka.loglevel=WARN -Dlockflow.kafka.logtarget=SYSTEM_ERR)

kafka_tool() {
    timeout 60 java "${KAFKA_TOOL_OPTS[@]}" -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.xml" \
        -cp "$KAFKA_LIBS/*" "$@"
}

kafka_running() { pid_alive "$KAFKA_PIDFILE" "kafka.Kafka $KAFKA_CONF"; }

# Jars come from Maven Central (the only place we can download from), cached per
# version. The pom's hash is kept beside them so editing the pom refetches.
kafka_fetch() {
    local pom=$SCRIPT_DIR/kafka/pom.xml want have tmp
    want=$(sha256sum "$pom" | cut -d' ' -f1)
    have=$(cat "$KAFKA_LIBS/.pom.sha256" 2>/dev/null || true)
    if [[ $want == "$have" && -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]]; then
        return 0
    fi
    ensure_java
    log "kafka: downloading Kafka $KAFKA_VERSION jars from Maven Central into $KAFKA_LIBS"
    mkdir -p "$KAFKA_HOME"
    # Download next to the cache and rename, so an interrupted run never
    # leaves a half-filled libs/ that later runs would trust.
    tmp=$KAFKA_HOME/libs.tmp.$$
    rm -rf "$tmp"
    if ! mvn -B -q -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
        -Dkafka.version="$KAFKA_VERSION" -DincludeScope=runtime \
        -DoutputDirectory="$tmp" >"$KAFKA_HOME/mvn.log" 2>&1; then
        rm -rf "$tmp"
        die_with_log kafka "$KAFKA_HOME/mvn.log" "mvn could not fetch Kafka $KAFKA_VERSION"
    fi
    [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] ||
        die "kafka: mvn succeeded but kafka_2.13-$KAFKA_VERSION.jar is missing in $tmp"
    echo "$want" >"$tmp/.pom.sha256"
    rm -rf "$KAFKA_LIBS"
    mv "$tmp" "$KAFKA_LIBS"
}

# Rendered on every up, so port overrides take effect on the next start.
kafka_render_config() {
    mkdir -p "$KAFKA_DATA"
    sed -e "s|@KAFKA_PORT@|$KAFKA_PORT|g" \
        -e "s|@CONTROLLER_PORT@|$KAFKA_CONTROLLER_PORT|g" \
        -e "s|@LOG_DIRS@|$KAFKA_DATA|g" \
        "$SCRIPT_DIR/kafka/server.properties.template" >"$KAFKA_CONF"
    cp "$SCRIPT_DIR/kafka/log4j2.xml" "$KAFKA_LOG4J"
    # Client settings for the readiness check: fail fast so we can retry.
    printf 'request.timeout.ms=5000\ndefault.api.timeout.ms=10000\n' >"$KAFKA_STATE/tools.properties"
}

# KRaft storage must be formatted (cluster id + metadata log) exactly once.
kafka_format() {
    [[ -f $KAFKA_DATA/meta.properties ]] && return 0
    local cluster_id
    cluster_id=$(kafka_tool kafka.tools.StorageTool random-uuid 2>>"$KAFKA_LOG") ||
        die_with_log kafka "$KAFKA_LOG" "StorageTool random-uuid failed"
    log "kafka: formatting storage in $KAFKA_DATA (cluster id $cluster_id)"
    kafka_tool kafka.tools.StorageTool format --ignore-formatted \
        -t "$cluster_id" -c "$KAFKA_CONF" >>"$KAFKA_LOG" 2>&1 ||
        die_with_log kafka "$KAFKA_LOG" "StorageTool format failed"
}

kafka_start() {
    check_port_free kafka "$KAFKA_PORT"
    check_port_free kafka-controller "$KAFKA_CONTROLLER_PORT"
    log "kafka: starting Kafka $KAFKA_VERSION on $HOST:$KAFKA_PORT (log: $KAFKA_LOG)"
    rm -f "$KAFKA_PIDFILE"
    # setsid: own session, so a Ctrl-C in the calling terminal does not reach
    # it. The inner bash writes its pid and execs java, so the pid file holds
    # the JVM's pid whether or not setsid had to fork.
    # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
    nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$KAFKA_PIDFILE" \
        java -Xmx512m -Xms256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$KAFKA_LOG4J" \
        -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_CONF" \
        </dev/null >>"$KAFKA_LOG" 2>&1 9>&- &
}

# The listener port opens before the broker serves requests, so after it opens
# we make a real client round trip (list topics) until it succeeds. A broker with many
# partitions spends minutes loading their logs: while its log still grows the wait goes on
# (up to 5 x TIMEOUT), so a slow start is not taken for a dead one.
kafka_wait_ready() {
    local deadline=$((SECONDS + TIMEOUT)) limit=$((SECONDS + 5 * TIMEOUT)) size seen=-1
    while :; do
        size=$(stat -c %s "$KAFKA_LOG" 2>/dev/null || echo 0)
        if ((size != seen)); then
            seen=$size
            deadline=$((SECONDS + TIMEOUT < limit ? SECONDS + TIMEOUT : limit))
        fi
        if ! kafka_running && [[ -s $KAFKA_PIDFILE ]]; then
            die_with_log kafka "$KAFKA_LOG" "Kafka exited during startup"
        fi
        if port_open "$KAFKA_PORT" && kafka_tool org.apache.kafka.tools.TopicCommand \
            --bootstrap-server "$HOST:$KAFKA_PORT" \
            --command-config "$KAFKA_STATE/tools.properties" --list >/dev/null 2>>"$KAFKA_STATE/check.log"; then
            log "kafka: ready on $HOST:$KAFKA_PORT"
            return 0
        fi
        ((SECONDS < deadline)) ||
            die_with_log kafka "$KAFKA_LOG" "no answer on $HOST:$KAFKA_PORT after ${TIMEOUT}s without progress in its log (client errors: $KAFKA_STATE/check.log)"
        sleep 1
    done
}

# Sets KAFKA_STARTED=1 when it launched the broker (the caller then waits for it).
KAFKA_STARTED=0
kafka_up() {
    mkdir -p "$KAFKA_STATE"
    if kafka_running && port_open "$KAFKA_PORT"; then
        log "kafka: already running (pid $(cat "$KAFKA_PIDFILE"))"
        return 0
    fi
    : >"$KAFKA_STATE/check.log"
    if kafka_running; then
        # Alive but not listening yet: a previous up is still booting it.
        log "kafka: process running, waiting for it to listen"
    else
        kafka_fetch
        kafka_render_config
        # Fresh log per start, so a failure's log tail is about this start.
        if [[ -f $KAFKA_LOG ]]; then mv "$KAFKA_LOG" "$KAFKA_LOG.prev"; fi
        kafka_format
        kafka_start
    fi
    KAFKA_STARTED=1
}

kafka_down() { stop_pid kafka "$KAFKA_PIDFILE" "kafka.Kafka"; }

kafka_status() {
    if kafka_running && port_open "$KAFKA_PORT"; then
        echo "kafka     up    $HOST:$KAFKA_PORT  (pid $(cat "$KAFKA_PIDFILE"), $KAFKA_VERSION)"
    else
        echo "kafka     down  $HOST:$KAFKA_PORT"
        return 1
    fi
}

# ---------------------------------------------------------------- PostgreSQL

# Postgres refuses to run as root, so as root it runs as the 'postgres' user.
as_pg() {
    if [[ $EUID -eq 0 ]]; then
        # cd /: the caller's cwd (often under /root) is unreadable for postgres.
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# Sets PG_HOME/PG_DATA/PG_LOG from an existing layout; fails if there is none.
pg_paths() {
    [[ -e $PG_LINK ]] || return 1
    PG_HOME=$(readlink -f "$PG_LINK")
    PG_DATA=$PG_HOME/data
    PG_LOG=$PG_HOME/postgres.log
}

# First run: create the pg dir. The 'postgres' user must be able to reach it,
# but the default state dir is under /root (mode 700). Rather than loosen
# /root, the cluster then lives under /var/lib/lockflow (one dir per state
# dir) and $STATE/pg is a symlink to it.
pg_layout() {
    pg_paths && return 0
    local home=$PG_LINK
    if [[ $EUID -eq 0 ]]; then
        id postgres >/dev/null 2>&1 ||
            useradd --system --user-group --home-dir /var/lib/postgresql --shell /bin/bash postgres
        if ! runuser -u postgres -- test -x "$STATE_DIR"; then
            home=/var/lib/lockflow/pg-$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)
            mkdir -p "$home"
            ln -sfn "$home" "$PG_LINK"
        fi
    fi
    mkdir -p "$home"
    [[ $EUID -eq 0 ]] && chown postgres:postgres "$home"
    chmod 700 "$home"
    pg_paths
}

pg_ensure_installed() {
    [[ -x $PG_BIN/initdb && -x $PG_BIN/psql && -x $PG_BIN/pg_isready ]] && return 0
    apt_install postgresql
    [[ -x $PG_BIN/initdb ]] || die "postgres: $PG_BIN/initdb still missing after install (set LOCKFLOW_PG_BIN)"
}

pg_initdb() {
    [[ -f $PG_DATA/PG_VERSION ]] && return 0
    log "postgres: initdb in $PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-locale \
        >"$PG_HOME/initdb.log" 2>&1 || die_with_log postgres "$PG_HOME/initdb.log" "initdb failed"
    # TCP on 127.0.0.1 only; no unix socket (its default dir may not exist, and
    # socket paths are length-limited). Port is given at start, so it can change.
    cat >>"$PG_DATA/postgresql.conf" <<'EOF'

# --- lockflow dev/CI settings (scripts/services.sh) ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
EOF
    cat >"$PG_DATA/pg_hba.conf" <<'EOF'
# lockflow dev/CI: trust, loopback TCP only.
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  trust
EOF
}

# The postmaster's pid is line 1 of postmaster.pid. Matching its command line
# (not just `pg_ctl status`, which only does kill -0) means a stale pid file
# left by a killed server, whose pid now belongs to something else, reads as down.
pg_running() {
    pg_paths && [[ -f $PG_DATA/PG_VERSION ]] || return 1
    local pid
    pid=$(head -n 1 "$PG_DATA/postmaster.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "-D $PG_DATA"
}

pg_psql() { "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$HOST" -p "$PG_PORT" "$@"; }

# Role and databases, idempotent (CREATE DATABASE cannot run inside DO, hence \gexec).
pg_bootstrap() {
    pg_psql -U postgres -d postgres >/dev/null <<'EOF' || die_with_log postgres "$PG_LOG" "creating role/databases failed"
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lockflow') THEN
    CREATE ROLE lockflow LOGIN CREATEDB PASSWORD 'lockflow';
  END IF;
END
$$;
SELECT 'CREATE DATABASE lockflow OWNER lockflow'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'lockflow') \gexec
SELECT 'CREATE DATABASE lockflow_test OWNER lockflow'
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'lockflow_test') \gexec
EOF
}

pg_check() {
    [[ $(pg_psql -U lockflow -d lockflow -tAc 'select 1' 2>/dev/null) == 1 ]]
}

pg_up() {
    pg_ensure_installed
    mkdir -p "$STATE_DIR"
    pg_layout
    if pg_running && pg_check; then
        log "postgres: already running"
        return 0
    fi
    pg_initdb
    if ! pg_running; then
        check_port_free postgres "$PG_PORT"
        log "postgres: starting on $HOST:$PG_PORT (log: $PG_LOG)"
        as_pg "$PG_BIN/pg_ctl" start -D "$PG_DATA" -l "$PG_LOG" -w -t "$TIMEOUT" \
            -o "-p $PG_PORT" >/dev/null 2>&1 9>&- || die_with_log postgres "$PG_LOG" "pg_ctl start failed"
    fi
    "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t "$TIMEOUT" ||
        die_with_log postgres "$PG_LOG" "not accepting connections on $HOST:$PG_PORT"
    pg_bootstrap
    pg_check || die_with_log postgres "$PG_LOG" "'select 1' as lockflow failed"
    log "postgres: ready on $HOST:$PG_PORT"
}

pg_down() {
    pg_running || return 0
    log "stopping postgres"
    as_pg "$PG_BIN/pg_ctl" stop -D "$PG_DATA" -m fast -w -t 60 >/dev/null
}

pg_status() {
    if pg_running && "$PG_BIN/pg_isready" -q -h "$HOST" -p "$PG_PORT" -t 2; then
        echo "postgres  up    $HOST:$PG_PORT  (data: $PG_DATA)"
    else
        echo "postgres  down  $HOST:$PG_PORT"
        return 1
    fi
}

# ---------------------------------------------------------------- Redis

redis_running() { pid_alive "$REDIS_PIDFILE" redis-server; }
redis_ping() { [[ $(redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]; }

redis_up() {
    if ! command -v redis-server >/dev/null || ! command -v redis-cli >/dev/null; then
        apt_install redis-server
    fi
    mkdir -p "$REDIS_STATE"
    if redis_running && redis_ping; then
        log "redis: already running (pid $(cat "$REDIS_PIDFILE"))"
        return 0
    fi
    if ! redis_running; then
        check_port_free redis "$REDIS_PORT"
        log "redis: starting on $HOST:$REDIS_PORT (log: $REDIS_LOG)"
        # No persistence: save "" disables RDB snapshots, appendonly no the AOF.
        redis-server --daemonize yes --bind "$HOST" --port "$REDIS_PORT" \
            --pidfile "$REDIS_PIDFILE" --logfile "$REDIS_LOG" --dir "$REDIS_STATE" \
            --save '' --appendonly no 9>&- ||
            die_with_log redis "$REDIS_LOG" "redis-server failed to start"
    fi
    local deadline=$((SECONDS + TIMEOUT))
    until redis_ping; do
        ((SECONDS < deadline)) || die_with_log redis "$REDIS_LOG" "no PONG on $HOST:$REDIS_PORT after ${TIMEOUT}s"
        sleep 0.2
    done
    log "redis: ready on $HOST:$REDIS_PORT"
}

redis_down() { stop_pid redis "$REDIS_PIDFILE" redis-server; }

redis_status() {
    if redis_running && redis_ping; then
        echo "redis     up    $HOST:$REDIS_PORT  (pid $(cat "$REDIS_PIDFILE"))"
    else
        echo "redis     down  $HOST:$REDIS_PORT"
        return 1
    fi
}

# ---------------------------------------------------------------- MariaDB

# A plain mariadbd from Debian's package, started by this script (never the
# package's own service). As root it runs as the 'mysql' user (mariadbd
# switches itself), otherwise as the caller. The account that may do
# everything is the caller's own, over the unix socket only (unix_socket
# authentication: no password, no TCP); the 'lockflow' user (password
# 'lockflow') owns the databases named lockflow*, over TCP on 127.0.0.1.

mariadb_installed() {
    [[ -x $MARIADBD ]] && command -v mariadb-install-db >/dev/null &&
        command -v mariadb >/dev/null && command -v mariadb-admin >/dev/null
}

mariadb_ensure_installed() {
    mariadb_installed && return 0
    apt_install mariadb-server
    mariadb_installed ||
        die "mariadb: $MARIADBD or the client tools still missing after install (set LOCKFLOW_MARIADBD)"
}

# Sets MARIADB_HOME/DATA/LOG/SOCKET/PIDFILE from an existing layout; fails if there is none.
mariadb_paths() {
    [[ -e $MARIADB_LINK ]] || return 1
    MARIADB_HOME=$(readlink -f "$MARIADB_LINK")
    MARIADB_DATA=$MARIADB_HOME/data
    MARIADB_LOG=$MARIADB_HOME/mariadb.log
    MARIADB_SOCKET=$MARIADB_HOME/mariadb.sock
    MARIADB_PIDFILE=$MARIADB_HOME/lockflow.pid
}

# First run: as for PostgreSQL, the 'mysql' user must reach the dir, so under
# a state dir it cannot enter (/root) the dir lives in /var/lib/lockflow.
mariadb_layout() {
    mariadb_paths && return 0
    local home=$MARIADB_LINK
    if [[ $EUID -eq 0 ]]; then
        id mysql >/dev/null 2>&1 ||
            useradd --system --user-group --home-dir /nonexistent --shell /usr/sbin/nologin mysql
        if ! runuser -u mysql -- test -x "$STATE_DIR"; then
            home=/var/lib/lockflow/mariadb-$(printf '%s' "$STATE_DIR" | cksum | cut -d' ' -f1)
            mkdir -p "$home"
            ln -sfn "$home" "$MARIADB_LINK"
        fi
    fi
    mkdir -p "$home"
    [[ $EUID -eq 0 ]] && chown mysql:mysql "$home"
    chmod 700 "$home"
    mariadb_paths
}

# mariadb_as_owner CMD...: as root, CMD --user=mysql (the tool then works as that user).
mariadb_as_owner() {
    if [[ $EUID -eq 0 ]]; then "$@" --user=mysql; else "$@"; fi
}

# The system tables, made once in a temp dir and renamed, so an interrupted
# run never leaves a half-made data dir that later runs would trust.
mariadb_init() {
    [[ -d $MARIADB_DATA/mysql ]] && return 0
    local tmp=$MARIADB_HOME/data.tmp
    log "mariadb: initialising $MARIADB_DATA"
    rm -rf "$tmp"
    if ! (cd / && mariadb_as_owner mariadb-install-db --no-defaults --datadir="$tmp" \
        --skip-test-db --skip-name-resolve --auth-root-authentication-method=socket \
        --auth-root-socket-user="$(id -un)") >"$MARIADB_HOME/init.log" 2>&1; then
        rm -rf "$tmp"
        die_with_log mariadb "$MARIADB_HOME/init.log" "mariadb-install-db failed"
    fi
    mv "$tmp" "$MARIADB_DATA"
}

mariadb_running() { mariadb_paths && pid_alive "$MARIADB_PIDFILE" "--datadir=$MARIADB_DATA"; }

# Small buffers, and the redo log flushed once a second rather than at every
# commit (a dev/CI server: speed over durability).
mariadb_start() {
    check_port_free mariadb "$MARIADB_PORT"
    log "mariadb: starting on $HOST:$MARIADB_PORT (log: $MARIADB_LOG)"
    if [[ -f $MARIADB_LOG ]]; then mv "$MARIADB_LOG" "$MARIADB_LOG.prev"; fi
    rm -f "$MARIADB_PIDFILE"
    local args=(--no-defaults --datadir="$MARIADB_DATA" --bind-address="$HOST" --port="$MARIADB_PORT"
        --socket="$MARIADB_SOCKET" --pid-file="$MARIADB_HOME/mariadbd.pid" --log-error="$MARIADB_LOG"
        --skip-name-resolve --innodb-buffer-pool-size=128M --innodb-flush-log-at-trx-commit=2
        --character-set-server=utf8mb4 --collation-server=utf8mb4_unicode_ci)
    if [[ $EUID -eq 0 ]]; then args+=(--user=mysql); fi
    # As for Kafka: its own session, and the pid file holds mariadbd's pid (it does not fork).
    # (No `cd / && ... &` here: that would background the whole list in a subshell that keeps fd 9.)
    # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
    nohup setsid bash -c 'cd / && echo $$ >"$0" && exec "$@"' "$MARIADB_PIDFILE" \
        "$MARIADBD" "${args[@]}" </dev/null >>"$MARIADB_HOME/stdout.log" 2>&1 9>&- &
}

# The caller's own account, over the socket (see above).
mariadb_admin_sql() { mariadb --no-defaults --socket="$MARIADB_SOCKET" -u "$(id -un)" "$@"; }

mariadb_check() {
    [[ $(mariadb --no-defaults -h "$HOST" -P "$MARIADB_PORT" -u lockflow --password=lockflow \
        --connect-timeout=3 -N -B -e 'select 1' lockflow 2>/dev/null) == 1 ]]
}

# User and database, idempotent. `lockflow%` also covers the scratch databases tests create.
mariadb_bootstrap() {
    mariadb_admin_sql >/dev/null <<'EOF' || die_with_log mariadb "$MARIADB_LOG" "creating user/database failed"
CREATE USER IF NOT EXISTS 'lockflow'@'%' IDENTIFIED BY 'lockflow';
CREATE DATABASE IF NOT EXISTS lockflow;
GRANT ALL PRIVILEGES ON `lockflow%`.* TO 'lockflow'@'%';
EOF
}

# Sets MARIADB_STARTED=1 when it launched mariadbd or found it not ready yet (the caller then waits).
MARIADB_STARTED=0
mariadb_up() {
    mariadb_ensure_installed
    mkdir -p "$STATE_DIR"
    mariadb_layout
    if mariadb_running && mariadb_check; then
        log "mariadb: already running (pid $(cat "$MARIADB_PIDFILE"))"
        return 0
    fi
    mariadb_init
    if ! mariadb_running; then mariadb_start; fi
    MARIADB_STARTED=1
}

mariadb_wait_ready() {
    local deadline=$((SECONDS + TIMEOUT))
    until mariadb_admin_sql --connect-timeout=2 -N -B -e 'select 1' >/dev/null 2>&1; do
        mariadb_running || die_with_log mariadb "$MARIADB_LOG" "mariadbd exited during startup"
        ((SECONDS < deadline)) ||
            die_with_log mariadb "$MARIADB_LOG" "no answer on $MARIADB_SOCKET after ${TIMEOUT}s"
        sleep 0.2
    done
    mariadb_bootstrap
    mariadb_check ||
        die_with_log mariadb "$MARIADB_LOG" "'select 1' as lockflow on $HOST:$MARIADB_PORT failed"
    log "mariadb: ready on $HOST:$MARIADB_PORT"
}

mariadb_down() {
    mariadb_paths || return 0
    stop_pid mariadb "$MARIADB_PIDFILE" "--datadir=$MARIADB_DATA"
}

mariadb_status() {
    if mariadb_running && mariadb_check; then
        echo "mariadb   up    $HOST:$MARIADB_PORT  (pid $(cat "$MARIADB_PIDFILE"), data: $MARIADB_DATA)"
    else
        echo "mariadb   down  $HOST:$MARIADB_PORT"
        return 1
    fi
}

# ---------------------------------------------------------------- SeaweedFS (S3)

# `weed server` with a master, a volume server, a filer and the S3 gateway in one process,
# all on loopback; telemetry and the extra catalog ports are off.
seaweed_running() { pid_alive "$SEAWEED_PIDFILE" "-dir=$SEAWEED_DATA"; }
seaweed_ready() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$HOST:$S3_PORT/healthz" 2>/dev/null) == 200 ]]
}

# Built from the Go module (the Go proxy is the one place it can come from), cached per version.
# `go install pkg@version` refuses a module whose go.mod has replace directives, as this one
# does, so the module is downloaded and built in place. Two cores take several minutes.
seaweed_build() {
    [[ -x $WEED ]] && return 0
    command -v go >/dev/null || die "seaweedfs: Go is needed to build weed (https://go.dev/dl/, 1.26+)"
    mkdir -p "$SEAWEEDFS_HOME/bin"
    log "seaweedfs: building weed $SEAWEEDFS_VERSION from its Go module (minutes; log: $SEAWEEDFS_HOME/build.log)"
    local dir
    dir=$(cd "$SEAWEEDFS_HOME" && GOFLAGS=-mod=mod go mod download -json \
        "github.com/seaweedfs/seaweedfs@$SEAWEEDFS_VERSION" 2>"$SEAWEEDFS_HOME/build.log" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p') ||
        die_with_log seaweedfs "$SEAWEEDFS_HOME/build.log" "go mod download failed"
    [[ -d $dir ]] || die_with_log seaweedfs "$SEAWEEDFS_HOME/build.log" "go mod download gave no source folder"
    # Built under a temp name and renamed, so an interrupted build never leaves a weed later runs trust.
    (cd "$dir" && GOFLAGS=-mod=mod go build -o "$WEED.tmp.$$" ./weed) >>"$SEAWEEDFS_HOME/build.log" 2>&1 || {
        rm -f "$WEED.tmp.$$"
        die_with_log seaweedfs "$SEAWEEDFS_HOME/build.log" "go build ./weed failed"
    }
    mv "$WEED.tmp.$$" "$WEED"
}

seaweed_render_config() {
    mkdir -p "$SEAWEED_DATA"
    cat >"$SEAWEED_S3_CONFIG" <<JSON
{"identities": [{"name": "lockflow",
  "credentials": [{"accessKey": "$S3_ACCESS_KEY", "secretKey": "$S3_SECRET_KEY"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
}

seaweed_ports() {
    local port
    for port in "$S3_PORT" "$SEAWEED_MASTER_PORT" "$SEAWEED_VOLUME_PORT" "$SEAWEED_FILER_PORT"; do
        check_port_free seaweedfs "$port"
        check_port_free seaweedfs-grpc $((port + 10000))
    done
}

# Sets SEAWEED_STARTED=1 when it launched weed or found it not ready yet (the caller then waits).
SEAWEED_STARTED=0
seaweed_up() {
    mkdir -p "$SEAWEED_STATE"
    if seaweed_running && seaweed_ready; then
        log "seaweedfs: already running (pid $(cat "$SEAWEED_PIDFILE"))"
        return 0
    fi
    if ! seaweed_running; then
        seaweed_build
        seaweed_ports
        seaweed_render_config
        if [[ -f $SEAWEED_LOG ]]; then mv "$SEAWEED_LOG" "$SEAWEED_LOG.prev"; fi
        log "seaweedfs: starting S3 on $HOST:$S3_PORT (log: $SEAWEED_LOG)"
        # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
        nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$SEAWEED_PIDFILE" \
            "$WEED" server -dir="$SEAWEED_DATA" -ip="$HOST" -ip.bind="$HOST" \
            -master.port="$SEAWEED_MASTER_PORT" -volume.port="$SEAWEED_VOLUME_PORT" \
            -filer -filer.port="$SEAWEED_FILER_PORT" -s3 -s3.port="$S3_PORT" -s3.config="$SEAWEED_S3_CONFIG" \
            -s3.port.iceberg=0 -s3.port.lance=0 -s3.iam=false -s3.autoCreateBucket=false \
            -master.volumeSizeLimitMB=1024 -volume.max=0 -master.telemetry=false \
            </dev/null >>"$SEAWEED_LOG" 2>&1 9>&- &
    fi
    SEAWEED_STARTED=1
}

seaweed_wait_ready() {
    local deadline=$((SECONDS + TIMEOUT))
    until seaweed_ready; do
        if ! seaweed_running && [[ -s $SEAWEED_PIDFILE ]]; then
            die_with_log seaweedfs "$SEAWEED_LOG" "weed exited during startup"
        fi
        ((SECONDS < deadline)) || die_with_log seaweedfs "$SEAWEED_LOG" "no answer on $HOST:$S3_PORT after ${TIMEOUT}s"
        sleep 0.5
    done
    log "seaweedfs: S3 ready on $HOST:$S3_PORT"
}

seaweed_down() { stop_pid seaweedfs "$SEAWEED_PIDFILE" "-dir=$SEAWEED_DATA"; }

seaweed_status() {
    if seaweed_running && seaweed_ready; then
        echo "seaweedfs up    $HOST:$S3_PORT  (pid $(cat "$SEAWEED_PIDFILE"), S3, data: $SEAWEED_DATA)"
    else
        echo "seaweedfs down  $HOST:$S3_PORT"
        return 1
    fi
}

# ---------------------------------------------------------------- Jaeger v2 (traces)

# The collector and query service in one process, spans kept in memory, on loopback only.
jaeger_running() { pid_alive "$JAEGER_PIDFILE" "--config=$JAEGER_CONF"; }
jaeger_ready() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$HOST:$JAEGER_HEALTH_PORT/status" 2>/dev/null) == 200 ]]
}

# `go install pkg@version` refuses the module (its go.mod has a replace directive), so a small
# tools module of our own requires it and builds cmd/jaeger; niced, one package at a time (two
# cores, shared). Built under a temp name and renamed, so an interrupted build is never trusted.
jaeger_build() {
    [[ -x $JAEGER ]] && return 0
    command -v go >/dev/null || die "jaeger: Go is needed to build it (https://go.dev/dl/, 1.26+)"
    mkdir -p "$JAEGER_HOME/tools" "$JAEGER_HOME/bin"
    log "jaeger: building Jaeger ($JAEGER_VERSION) from its Go module (minutes; log: $JAEGER_HOME/build.log)"
    (
        cd "$JAEGER_HOME/tools"
        [[ -f go.mod ]] || printf 'module lockflow.local/jaeger-tools\n\ngo 1.26\n' >go.mod
        GOFLAGS=-mod=mod nice -n 19 go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@$JAEGER_VERSION" &&
            GOFLAGS=-mod=mod nice -n 19 go build -p 1 -o "$JAEGER.tmp.$$" github.com/jaegertracing/jaeger/cmd/jaeger
    ) >>"$JAEGER_HOME/build.log" 2>&1 || {
        rm -f "$JAEGER.tmp.$$"
        die_with_log jaeger "$JAEGER_HOME/build.log" "go build of cmd/jaeger failed"
    }
    mv "$JAEGER.tmp.$$" "$JAEGER"
}

# The all-in-one configuration, with every listener on loopback and the collector's own
# metrics off (their default port, 8888, is SeaweedFS's filer here).
jaeger_render_config() {
    mkdir -p "$JAEGER_STATE"
    cat >"$JAEGER_CONF" <<YAML
service:
  extensions: [jaeger_storage, jaeger_query, healthcheckv2]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  healthcheckv2:
    use_v2: true
    http:
      endpoint: $HOST:$JAEGER_HEALTH_PORT
  jaeger_query:
    storage:
      traces: memstore
    http:
      endpoint: $HOST:$JAEGER_QUERY_PORT
    grpc:
      endpoint: $HOST:$((JAEGER_QUERY_PORT - 1))
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: $HOST:$JAEGER_GRPC_PORT
      http:
        endpoint: $HOST:$JAEGER_OTLP_PORT
processors:
  batch: {}
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
YAML
}

jaeger_ports() {
    local port
    for port in "$JAEGER_OTLP_PORT" "$JAEGER_GRPC_PORT" "$JAEGER_QUERY_PORT" "$((JAEGER_QUERY_PORT - 1))" "$JAEGER_HEALTH_PORT"; do
        check_port_free jaeger "$port"
    done
}

JAEGER_STARTED=0
jaeger_up() {
    mkdir -p "$JAEGER_STATE"
    if jaeger_running && jaeger_ready; then
        log "jaeger: already running (pid $(cat "$JAEGER_PIDFILE"))"
        return 0
    fi
    if ! jaeger_running; then
        jaeger_build
        jaeger_ports
        jaeger_render_config
        if [[ -f $JAEGER_LOG ]]; then mv "$JAEGER_LOG" "$JAEGER_LOG.prev"; fi
        log "jaeger: starting OTLP on $HOST:$JAEGER_OTLP_PORT, query on $HOST:$JAEGER_QUERY_PORT (log: $JAEGER_LOG)"
        # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
        nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$JAEGER_PIDFILE" \
            "$JAEGER" --config="$JAEGER_CONF" </dev/null >>"$JAEGER_LOG" 2>&1 9>&- &
    fi
    JAEGER_STARTED=1
}

jaeger_wait_ready() {
    local deadline=$((SECONDS + TIMEOUT))
    until jaeger_ready; do
        if ! jaeger_running && [[ -s $JAEGER_PIDFILE ]]; then
            die_with_log jaeger "$JAEGER_LOG" "jaeger exited during startup"
        fi
        ((SECONDS < deadline)) || die_with_log jaeger "$JAEGER_LOG" "no answer on $HOST:$JAEGER_HEALTH_PORT after ${TIMEOUT}s"
        sleep 0.5
    done
    log "jaeger: ready, OTLP on $HOST:$JAEGER_OTLP_PORT"
}

jaeger_down() { stop_pid jaeger "$JAEGER_PIDFILE" "--config=$JAEGER_CONF"; }

jaeger_status() {
    if jaeger_running && jaeger_ready; then
        echo "jaeger    up    $HOST:$JAEGER_QUERY_PORT  (pid $(cat "$JAEGER_PIDFILE"), OTLP $HOST:$JAEGER_OTLP_PORT, in memory)"
    else
        echo "jaeger    down  $HOST:$JAEGER_QUERY_PORT"
        return 1
    fi
}

# ---------------------------------------------------------------- schema registry

registry_running() { pid_alive "$REGISTRY_PIDFILE" "$REGISTRY_APP/quarkus-run.jar"; }
registry_ready() {
    [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$HOST:$REGISTRY_PORT/health/ready" 2>/dev/null) == 200 ]]
}

# Apicurio's app jar on Maven Central is a library, not a runnable server: a copy of our pom builds it
# into a Quarkus fast-jar, with the app's own application.properties (from its jar; its package type
# lines dropped) plus build.properties. Built next to the cache and renamed (an interrupted build is
# never trusted); the pom's and the properties' hash is kept beside it, so editing either rebuilds.
registry_build() {
    local want have work
    want=$(cat "$SCRIPT_DIR/registry/pom.xml" "$SCRIPT_DIR/registry/build.properties" | sha256sum | cut -d' ' -f1)
    have=$(cat "$REGISTRY_APP/.build.sha256" 2>/dev/null || true)
    [[ $want == "$have" && -f $REGISTRY_APP/quarkus-run.jar ]] && return 0
    ensure_java
    log "registry: building Apicurio Registry $REGISTRY_VERSION from Maven Central (a minute or two; log: $REGISTRY_HOME/build.log)"
    mkdir -p "$REGISTRY_HOME"
    work=$REGISTRY_HOME/build.$$
    rm -rf "$work"
    mkdir -p "$work/src/main/resources"
    cp "$SCRIPT_DIR/registry/pom.xml" "$work/pom.xml"
    (
        cd "$work"
        MAVEN_OPTS=${MAVEN_OPTS:--Xmx1500m} nice -n 19 mvn -B -q -Dstyle.color=never dependency:copy \
            -Dartifact="io.apicurio:apicurio-registry-app:$REGISTRY_VERSION:jar" -Dtransitive=false \
            -DoutputDirectory="$work/app" &&
            python3 -c 'import sys, zipfile; sys.stdout.buffer.write(zipfile.ZipFile(sys.argv[1]).read("application.properties"))' \
                "$work/app/apicurio-registry-app-$REGISTRY_VERSION.jar" |
            grep -v '^[^#]*quarkus\.package\.type' >src/main/resources/application.properties &&
            cat "$SCRIPT_DIR/registry/build.properties" >>src/main/resources/application.properties &&
            MAVEN_OPTS=${MAVEN_OPTS:--Xmx1500m} nice -n 19 mvn -B -T 1 -Dstyle.color=never package -DskipTests
    ) >"$REGISTRY_HOME/build.log" 2>&1 || {
        rm -rf "$work"
        die_with_log registry "$REGISTRY_HOME/build.log" "the Quarkus build of Apicurio Registry failed"
    }
    [[ -f $work/target/quarkus-app/quarkus-run.jar ]] ||
        die "registry: mvn succeeded but $work/target/quarkus-app/quarkus-run.jar is missing"
    echo "$want" >"$work/target/quarkus-app/.build.sha256"
    rm -rf "$REGISTRY_APP"
    mv "$work/target/quarkus-app" "$REGISTRY_APP"
    rm -rf "$work"
}

REGISTRY_STARTED=0
registry_up() {
    mkdir -p "$REGISTRY_STATE"
    if registry_running && registry_ready; then
        log "registry: already running (pid $(cat "$REGISTRY_PIDFILE"))"
        return 0
    fi
    if ! registry_running; then
        registry_build
        check_port_free registry "$REGISTRY_PORT"
        if [[ -f $REGISTRY_LOG ]]; then mv "$REGISTRY_LOG" "$REGISTRY_LOG.prev"; fi
        log "registry: starting the schema registry on $HOST:$REGISTRY_PORT (log: $REGISTRY_LOG)"
        # shellcheck disable=SC2016  # $$ and $@ are for the inner bash
        nohup setsid bash -c 'echo $$ >"$0"; exec "$@"' "$REGISTRY_PIDFILE" \
            java -Xmx256m -XX:+UseSerialGC -Djava.awt.headless=true \
            -Dquarkus.http.host="$HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
            -jar "$REGISTRY_APP/quarkus-run.jar" </dev/null >>"$REGISTRY_LOG" 2>&1 9>&- &
    fi
    REGISTRY_STARTED=1
}

registry_wait_ready() {
    local deadline=$((SECONDS + TIMEOUT))
    until registry_ready; do
        if ! registry_running && [[ -s $REGISTRY_PIDFILE ]]; then
            die_with_log registry "$REGISTRY_LOG" "the schema registry exited during startup"
        fi
        ((SECONDS < deadline)) || die_with_log registry "$REGISTRY_LOG" "no answer on $HOST:$REGISTRY_PORT after ${TIMEOUT}s"
        sleep 0.5
    done
    log "registry: ready on $HOST:$REGISTRY_PORT"
}

registry_down() { stop_pid registry "$REGISTRY_PIDFILE" "$REGISTRY_APP/quarkus-run.jar"; }

registry_status() {
    if registry_running && registry_ready; then
        echo "registry  up    $HOST:$REGISTRY_PORT  (pid $(cat "$REGISTRY_PIDFILE"), Apicurio $REGISTRY_VERSION, in memory)"
    else
        echo "registry  down  $HOST:$REGISTRY_PORT"
        return 1
    fi
}

# ---------------------------------------------------------------- commands

print_env() {
    echo "export LOCKFLOW_KAFKA_BOOTSTRAP=$HOST:$KAFKA_PORT"
    echo "export LOCKFLOW_DATABASE_URL=postgresql+psycopg2://lockflow:lockflow@$HOST:$PG_PORT/lockflow"
    echo "export LOCKFLOW_REDIS_URL=redis://$HOST:$REDIS_PORT/0"
    echo "export LOCKFLOW_MARIADB_URL=mariadb+pymysql://lockflow:lockflow@$HOST:$MARIADB_PORT/lockflow"
    echo "export LOCKFLOW_TEST_S3_URL=http://$HOST:$S3_PORT"
    echo "export LOCKFLOW_TEST_S3_ACCESS_KEY_ID=$S3_ACCESS_KEY"
    echo "export LOCKFLOW_TEST_S3_SECRET_ACCESS_KEY=$S3_SECRET_KEY"
    echo "export LOCKFLOW_TEST_OTLP_ENDPOINT=http://$HOST:$JAEGER_OTLP_PORT/v1/traces"
    echo "export LOCKFLOW_TEST_JAEGER_URL=http://$HOST:$JAEGER_QUERY_PORT"
    echo "export LOCKFLOW_TEST_SCHEMA_REGISTRY_URL=http://$HOST:$REGISTRY_PORT/apis/ccompat/v6"
}

# One up/down at a time per state dir (two terminals, or CI retrying).
# Every daemon start closes fd 9 (`9>&-`): a daemon that inherited it would
# hold the lock for its whole life and block every later up/down.
take_lock() {
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/.services.lock"
    flock -w 600 9 || die "another services.sh up/down holds $STATE_DIR/.services.lock"
}

# Before starting anything: a port held by a foreign process (e.g. Debian's own
# postgres or redis instance) fails the whole `up` early, with nothing half-started.
preflight_ports() {
    if ! kafka_running; then
        check_port_free kafka "$KAFKA_PORT"
        check_port_free kafka-controller "$KAFKA_CONTROLLER_PORT"
    fi
    pg_running || check_port_free postgres "$PG_PORT"
    redis_running || check_port_free redis "$REDIS_PORT"
    mariadb_running || check_port_free mariadb "$MARIADB_PORT"
    seaweed_running || seaweed_ports
    jaeger_running || jaeger_ports
    registry_running || check_port_free registry "$REGISTRY_PORT"
}

# Every missing Debian package in one apt-get run: on a fresh machine each
# separate run would repeat `apt-get update`. (Each service still checks its own.)
install_missing() {
    local want=()
    command -v java >/dev/null && command -v mvn >/dev/null || want+=(openjdk-17-jdk-headless maven)
    [[ -x $PG_BIN/initdb && -x $PG_BIN/psql && -x $PG_BIN/pg_isready ]] || want+=(postgresql)
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || want+=(redis-server)
    mariadb_installed || want+=(mariadb-server)
    # Prometheus and promtool (Debian's package): the suite starts its own Prometheus per test and
    # checks monitoring/alerts.yml with `promtool test rules`; nothing here keeps one running.
    command -v prometheus >/dev/null && command -v promtool >/dev/null || want+=(prometheus)
    if ((${#want[@]})); then apt_install "${want[@]}"; fi
}

cmd_up() {
    take_lock
    preflight_ports
    install_missing
    # Kafka and MariaDB boot in the background while postgres and redis come up.
    kafka_up
    mariadb_up
    seaweed_up
    jaeger_up
    registry_up
    redis_up
    pg_up
    if ((SEAWEED_STARTED)); then seaweed_wait_ready; fi
    if ((REGISTRY_STARTED)); then registry_wait_ready; fi
    if ((JAEGER_STARTED)); then jaeger_wait_ready; fi
    if ((MARIADB_STARTED)); then mariadb_wait_ready; fi
    if ((KAFKA_STARTED)); then kafka_wait_ready; fi
    print_env
}

cmd_down() {
    take_lock
    kafka_down
    redis_down
    pg_down
    mariadb_down
    seaweed_down
    jaeger_down
    registry_down
}

cmd_status() {
    local rc=0
    kafka_status || rc=1
    pg_status || rc=1
    redis_status || rc=1
    mariadb_status || rc=1
    seaweed_status || rc=1
    jaeger_status || rc=1
    registry_status || rc=1
    return "$rc"
}

usage() {
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

main() {
    case ${1:-} in
        up) cmd_up ;;
        down) cmd_down ;;
        status) cmd_status ;;
        env) print_env ;;
        -h | --help | help) usage ;;
        *) usage >&2; exit 2 ;;
    esac
}

main "$@"
