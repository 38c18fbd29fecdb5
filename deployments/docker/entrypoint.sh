#!/bin/sh
# Entry point of the ChatGO image (under tini, which forwards signals to it).
#
# `run` alone: run the server with the config at $CHATGO_CONFIG. On the first start, when no
# config is there yet, write one (with a fresh signing key and registration shared secret) for
# $CHATGO_SERVER_NAME, with $CHATGO_PUBLIC_BASEURL if set. Anything else is a chatgo command
# (`register-user`, `generate-signing-key`...). Either way chatgo replaces this shell (exec),
# so SIGTERM reaches it and a `docker stop` is a clean stop.
set -eu

config="${CHATGO_CONFIG:-/data/homeserver.yaml}"

if [ "$#" -eq 1 ] && [ "$1" = "run" ]; then
    if [ ! -e "$config" ]; then
        if [ -z "${CHATGO_SERVER_NAME:-}" ]; then
            echo "chatgo-entrypoint: no config at $config: set CHATGO_SERVER_NAME to write one on this first start, or mount yours there" >&2
            exit 78  # EX_CONFIG
        fi
        dir="$(dirname "$config")"
        if [ -n "${CHATGO_PUBLIC_BASEURL:-}" ]; then
            chatgo generate-config --server-name "$CHATGO_SERVER_NAME" --data-dir "$dir" \
                --public-baseurl "$CHATGO_PUBLIC_BASEURL"
        else
            chatgo generate-config --server-name "$CHATGO_SERVER_NAME" --data-dir "$dir"
        fi
        if [ "$config" != "$dir/homeserver.yaml" ]; then
            mv "$dir/homeserver.yaml" "$config"
        fi
    fi
    exec chatgo run -c "$config"
fi

exec chatgo "$@"
