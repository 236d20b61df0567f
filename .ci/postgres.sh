# shellcheck shell=bash
# A throw-away PostgreSQL server on loopback for the PostgreSQL tests of the durable store.
#
#   source .ci/postgres.sh     # starts it and exports RETRY_TEST_POSTGRES_URL
#   cargo test --workspace     # the PostgreSQL tests now run instead of skipping
#   retry_pg_stop              # or just leave the shell: a trap on EXIT stops it
#
# The server runs from a fresh temporary data directory (fsync off: test data only; with
# RETRY_PG_FSYNC=on it keeps PostgreSQL's durable defaults, for benchmarks), listens on
# 127.0.0.1 only, on the first free port from $RETRY_PG_PORT (default 54329), with `trust`
# authentication, and has a database `retry_test`. As root it runs as the `postgres` user (the
# server refuses root). It also accepts TLS (ssl=on), with a certificate for the host name
# `localhost` only (not 127.0.0.1) signed by a CA generated here with the openssl CLI; the CA's
# PEM file is exported as RETRY_TEST_POSTGRES_CA for the TLS tests (tests/durable_tls.rs). Without a server on the machine, it installs the distribution's
# `postgresql` package (as root, with apt-get). Sourced by .ci/run.

retry_pg_bindir() {
    local dir
    # Debian keeps the server outside PATH, one directory per major version; newest first.
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV) \
        "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/pg_ctl)")"; do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

retry_pg_as_server_user() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

retry_pg_stop() {
    if [ -n "${RETRY_PG_DIR:-}" ] && [ -d "$RETRY_PG_DIR" ]; then
        retry_pg_as_server_user "$RETRY_PG_BINDIR/pg_ctl" -D "$RETRY_PG_DIR/data" -m immediate \
            stop >/dev/null 2>&1 || true
        rm -rf "$RETRY_PG_DIR"
    fi
    unset RETRY_PG_DIR RETRY_TEST_POSTGRES_URL RETRY_TEST_POSTGRES_CA
}

# A CA and a server certificate for `localhost` (the SAN has no IP address, so connecting to
# 127.0.0.1 with sslmode=verify-full must fail), in $1/tls; the server's copies in $1/data.
retry_pg_make_certs() {
    local dir=$1 tls=$1/tls
    mkdir -p "$tls" || return 1
    openssl req -x509 -new -nodes -newkey rsa:2048 -days 2 -subj "/CN=retry test CA" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
        -keyout "$tls/ca.key" -out "$tls/ca.pem" 2>/dev/null || return 1
    openssl req -new -nodes -newkey rsa:2048 -subj "/CN=localhost" \
        -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null || return 1
    printf '%s\n' "basicConstraints=CA:FALSE" "subjectAltName=DNS:localhost" \
        "extendedKeyUsage=serverAuth" >"$tls/server.ext"
    openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.pem" -CAkey "$tls/ca.key" \
        -CAcreateserial -days 2 -extfile "$tls/server.ext" -out "$tls/server.pem" 2>/dev/null ||
        return 1
    cp "$tls/server.pem" "$tls/server.key" "$dir/data/" || return 1
    chmod 600 "$dir/data/server.key"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/data/server.pem" "$dir/data/server.key"
    return 0
}

retry_pg_start() {
    local bindir port dir tries
    if ! bindir=$(retry_pg_bindir); then
        if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
            echo "postgres.sh: no PostgreSQL server found; install the postgresql package" >&2
            return 1
        fi
        echo "postgres.sh: installing the postgresql package" >&2
        apt-get update -qq >&2 || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2 || return 1
        bindir=$(retry_pg_bindir) || {
            echo "postgres.sh: the postgresql package installed no server" >&2
            return 1
        }
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres || return 1
    fi
    # The first port from $RETRY_PG_PORT that nothing listens on.
    port=${RETRY_PG_PORT:-54329}
    for tries in $(seq 1 50); do
        (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
        port=$((port + 1))
    done
    dir=$(mktemp -d "${TMPDIR:-/tmp}/retry-pg.XXXXXX") || return 1
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    export RETRY_PG_DIR=$dir
    export RETRY_PG_BINDIR=$bindir
    trap retry_pg_stop EXIT
    retry_pg_as_server_user "$bindir/initdb" -D "$dir/data" -U postgres --auth=trust \
        --encoding=UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        return 1
    }
    local ssl="" fsync="-c fsync=off"
    [ "${RETRY_PG_FSYNC:-off}" = on ] && fsync=""
    if command -v openssl >/dev/null && retry_pg_make_certs "$dir"; then
        ssl="-c ssl=on -c ssl_cert_file=server.pem -c ssl_key_file=server.key"
        export RETRY_TEST_POSTGRES_CA="$dir/tls/ca.pem"
    else
        echo "postgres.sh: no openssl CLI, or it failed: the server has no TLS" >&2
    fi
    # The socket goes in the temporary directory too: /var/run/postgresql may not exist.
    retry_pg_as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir $fsync -c max_connections=200 $ssl" \
        start >/dev/null || {
        cat "$dir/server.log" >&2
        return 1
    }
    "$bindir/psql" -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -c "CREATE DATABASE retry_test" || return 1
    export RETRY_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/retry_test"
    echo "postgres.sh: PostgreSQL $("$bindir/postgres" -V | awk '{print $3}') on 127.0.0.1:$port;" \
        "RETRY_TEST_POSTGRES_URL=$RETRY_TEST_POSTGRES_URL" \
        "${RETRY_TEST_POSTGRES_CA:+RETRY_TEST_POSTGRES_CA=$RETRY_TEST_POSTGRES_CA}" >&2
}

retry_pg_start
