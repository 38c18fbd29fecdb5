#!/usr/bin/env bash
# Lint and validate everything under deployments/, offline, with the tools of the `test`
# extra (pip install -e '.[test]'). .ci/run runs it; tests/test_deployments.py runs the same
# tools with deeper checks (and runs the image's pieces and the Caddyfile for real).
set -euo pipefail
cd "$(dirname "$0")"
# pip puts the tools beside the interpreter; look there first.
PATH="$(python3 -c 'import os, sys; print(os.path.dirname(sys.executable))'):$PATH"

echo "== hadolint, shellcheck: docker/"
hadolint --failure-threshold style docker/Dockerfile
shellcheck --shell=sh docker/entrypoint.sh

echo "== docker-compose config, caddy validate: compose/"
env -u SERVER_NAME -u MATRIX_HOST -u POSTGRES_PASSWORD \
    docker-compose --project-directory compose -f compose/compose.yaml --env-file compose/.env.example config --quiet
SERVER_NAME=example.org MATRIX_HOST=matrix.example.org \
    caddy validate --config compose/Caddyfile --adapter caddyfile 2>/dev/null

echo "== kubectl kustomize | kubernetes-validate: kubernetes/"
for dir in kubernetes/base kubernetes/overlays/cloudnative-pg; do
    kubectl kustomize "$dir" | kubernetes-validate --strict --quiet -
done

if command -v helm >/dev/null; then
    echo "== helm lint, helm template | kubernetes-validate: helm/chatgo"
    for values in helm/chatgo/ci/*-values.yaml; do
        helm lint helm/chatgo -f "$values"
        helm template chatgo helm/chatgo -f "$values" | kubernetes-validate --strict --quiet -
    done
else
    echo "== helm/chatgo: helm is not installed (neither PyPI nor Debian has it); tests/test_deployments.py checks the chart's consistency"
fi

echo "== ansible-lint (production profile): ansible/"
(cd ansible && ansible-lint)

echo "deployments: every check passed"
