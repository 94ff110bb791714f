#!/usr/bin/env python3
"""Checks the deployment files in deploy/, the Dockerfile and .dockerignore with real tools
where one runs here, and checks what ties the files together where none does.

Run from the repository root, in a virtualenv with PyYAML, jsonschema, kubernetes-validate and
dockerfile (see .ci/run):

    check-deploy.py kubernetes --exporter target/debug/meta-messaging-exporter
    check-deploy.py dashboard
    check-deploy.py compose
    check-deploy.py dockerfile --binary target/release/meta-messaging-exporter
    check-deploy.py systemd --exporter target/debug/meta-messaging-exporter

Each subcommand prints what it checked and exits non-zero listing every problem it found.
The PromQL in the dashboard and the alert rules is not checked here: tests/api/prometheus.rs
runs every expression against a real Prometheus, and promtool checks and tests the rules.
"""

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path.cwd()
DEPLOY = ROOT / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
SCHEMAS = ROOT / ".ci" / "schemas"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "dashboards" / "meta-messaging-exporter.json"
COMPOSE = DEPLOY / "docker-compose.yml"

# The oldest Kubernetes minor version the manifests promise to work with, and the newest the
# installed kubernetes-validate knows. Both are checked: a field added after the oldest would
# fail the first, a field removed since would fail the second.
OLDEST_KUBERNETES = "1.29.0"

# The custom resources of the Prometheus operator, validated with the schemas in .ci/schemas
# (kubernetes-validate bundles only Kubernetes' own kinds).
CUSTOM_SCHEMAS = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "monitoring.coreos.com_v1_servicemonitor.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "monitoring.coreos.com_v1_prometheusrule.json",
}

# Where the config and the token are mounted, as Dockerfile, ConfigMap and Deployments agree.
CONFIG_DIR = "/etc/meta-messaging-exporter"
EXPORTER_PORT = 9867
NONROOT_UID = 65532


class Problems:
    """Collects problems so one run reports all of them."""

    def __init__(self, what):
        self.what = what
        self.items = []

    def add(self, where, message):
        self.items.append(f"{where}: {message}")

    def check(self, condition, where, message):
        if not condition:
            self.add(where, message)
        return condition

    def finish(self, checked):
        for line in checked:
            print(f"  ok: {line}")
        if self.items:
            print(f"{self.what}: {len(self.items)} problem(s):")
            for item in self.items:
                print(f"  - {item}")
            sys.exit(1)
        print(f"{self.what}: no problems")


def rel(path):
    return os.path.relpath(path, ROOT)


def load_documents(path):
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc is not None]


# --------------------------------------------------------------------------- kubernetes


def check_kubernetes(args):
    import jsonschema
    import kubernetes_validate

    problems = Problems("kubernetes")
    checked = []
    files = sorted(KUBERNETES.rglob("*.yaml"))
    problems.check(files, rel(KUBERNETES), "no manifests found")
    objects = []  # (file, document)
    for path in files:
        for doc in load_documents(path):
            objects.append((path, doc))

    versions = [OLDEST_KUBERNETES, kubernetes_validate.latest_version()]
    for path, doc in objects:
        where = f"{rel(path)} {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        schema_file = CUSTOM_SCHEMAS.get((doc.get("apiVersion"), doc.get("kind")))
        if schema_file:
            with open(SCHEMAS / schema_file, encoding="utf-8") as f:
                schema = json.load(f)
            errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(doc), key=str)
            for error in errors:
                location = ".".join(str(p) for p in error.absolute_path)
                problems.add(where, f"{location}: {error.message} (schema .ci/schemas/{schema_file})")
            if not errors:
                checked.append(f"{where} against .ci/schemas/{schema_file}")
            continue
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as error:
                location = ".".join(str(p) for p in error.path)
                problems.add(where, f"Kubernetes {version}: {location}: {error.message}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.add(where, f"no Kubernetes {version} schema for {doc.get('apiVersion')} {doc.get('kind')}")
        checked.append(f"{where} against Kubernetes {' and '.join(versions)} (strict)")

    by_kind = {}
    for path, doc in objects:
        by_kind.setdefault(doc["kind"], []).append((path, doc))

    check_prometheus_rule(problems, checked, by_kind)
    check_workloads(problems, checked, by_kind)
    check_config_map(problems, checked, by_kind, args.exporter)
    problems.finish(checked)


def check_prometheus_rule(problems, checked, by_kind):
    """The PrometheusRule must carry alerts.yml verbatim, and promtool must accept it."""
    rules = by_kind.get("PrometheusRule", [])
    problems.check(len(rules) == 1, "deploy/kubernetes", f"expected one PrometheusRule, found {len(rules)}")
    with open(ALERTS, encoding="utf-8") as f:
        alerts = yaml.safe_load(f)
    for path, doc in rules:
        where = rel(path)
        if problems.check(doc["spec"] == alerts, where, f"spec differs from {rel(ALERTS)}: copy the file's groups into spec"):
            checked.append(f"{where}: spec is {rel(ALERTS)}")
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump(doc["spec"], f)
            extracted = f.name
        try:
            result = subprocess.run(["promtool", "check", "rules", extracted], capture_output=True, text=True)
        finally:
            os.unlink(extracted)
        if problems.check(result.returncode == 0, where, f"promtool check rules on its spec failed:\n{result.stdout}{result.stderr}"):
            checked.append(f"{where}: promtool check rules on the extracted spec")


def pod_template_checks(problems, where, spec, exporter):
    """The exporter container's hardening, probes and resources, as the README promises."""
    pod_security = spec.get("securityContext", {})
    security = exporter.get("securityContext", {})

    def effective(key):
        return security.get(key, pod_security.get(key))

    problems.check(spec.get("automountServiceAccountToken") is False, where, "automountServiceAccountToken must be false (the exporter never calls the API server)")
    problems.check(effective("runAsNonRoot") is True, where, "runAsNonRoot must be true")
    problems.check(effective("runAsUser") == NONROOT_UID, where, f"runAsUser must be {NONROOT_UID}, the image's user")
    problems.check(security.get("readOnlyRootFilesystem") is True, where, "readOnlyRootFilesystem must be true")
    problems.check(security.get("allowPrivilegeEscalation") is False, where, "allowPrivilegeEscalation must be false")
    problems.check(security.get("capabilities", {}).get("drop") == ["ALL"], where, "capabilities must drop ALL")
    problems.check((effective("seccompProfile") or {}).get("type") == "RuntimeDefault", where, "seccompProfile must be RuntimeDefault")
    problems.check(pod_security.get("fsGroup") == NONROOT_UID, where, f"fsGroup must be {NONROOT_UID} so the token file is readable")
    ports = {p.get("name"): p.get("containerPort") for p in exporter.get("ports", [])}
    problems.check(ports.get("metrics") == EXPORTER_PORT, where, f"needs a port named metrics on {EXPORTER_PORT}")
    for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
        get = exporter.get(probe, {}).get("httpGet", {})
        problems.check(get.get("path") == path and get.get("port") == "metrics", where, f"{probe} must GET {path} on port metrics")
    resources = exporter.get("resources", {})
    for kind in ("requests", "limits"):
        problems.check("memory" in resources.get(kind, {}), where, f"resources.{kind}.memory must be set")
    problems.check("cpu" in resources.get("requests", {}), where, "resources.requests.cpu must be set")
    args = exporter.get("args", [])
    problems.check(f"--config.file={CONFIG_DIR}/config.yaml" in args, where, f"args must set --config.file={CONFIG_DIR}/config.yaml")


def check_workloads(problems, checked, by_kind):
    """Deployments mount what exists; Services select the pods; ServiceMonitors the Services."""
    config_maps = {doc["metadata"]["name"]: doc for _, doc in by_kind.get("ConfigMap", [])}
    secrets = {doc["metadata"]["name"]: doc for _, doc in by_kind.get("Secret", [])}
    deployments = by_kind.get("Deployment", [])
    problems.check(len(deployments) == 2, "deploy/kubernetes", f"expected the standalone and the sidecar Deployment, found {len(deployments)}")
    stateful_sets = by_kind.get("StatefulSet", [])
    problems.check(len(stateful_sets) == 1, "deploy/kubernetes", f"expected the sharded StatefulSet, found {len(stateful_sets)}")
    workloads = [(path, doc) for path, doc in deployments + stateful_sets]
    for path, deployment in workloads:
        kind = deployment["kind"]
        where = f"{rel(path)} {kind}/{deployment['metadata']['name']}"
        template = deployment["spec"]["template"]
        spec = template["spec"]
        selector = deployment["spec"]["selector"]["matchLabels"]
        problems.check(selector.items() <= template["metadata"]["labels"].items(), where, "selector does not match the pod labels")
        exporters = [c for c in spec["containers"] if c["image"].startswith("meta-messaging-exporter:")]
        if not problems.check(len(exporters) == 1, where, "needs exactly one meta-messaging-exporter container"):
            continue
        exporter = exporters[0]
        if kind == "Deployment":
            problems.check(deployment["spec"].get("replicas") == 1, where, "replicas must be 1: every replica polls Meta")
        else:
            check_shards(problems, where, deployment, exporter, by_kind)
        pod_template_checks(problems, where, spec, exporter)
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        mounts = {m["mountPath"]: m for m in exporter.get("volumeMounts", [])}
        config_mount = mounts.get(CONFIG_DIR)
        if problems.check(config_mount is not None, where, f"the config must be mounted at {CONFIG_DIR}"):
            problems.check("subPath" not in config_mount, where, "mount the ConfigMap as a directory (subPath mounts never see updates)")
            name = volumes.get(config_mount["name"], {}).get("configMap", {}).get("name")
            problems.check(name in config_maps, where, f"config volume refers to ConfigMap {name!r}, which deploy/kubernetes does not define")
        token_file = token_path(config_maps)
        token_mounts = [m for path_, m in mounts.items() if token_file and token_file.startswith(path_.rstrip("/") + "/")]
        if problems.check(token_mounts, where, f"nothing mounts the token file {token_file}"):
            mount = token_mounts[0]
            secret = volumes.get(mount["name"], {}).get("secret", {})
            name = secret.get("secretName")
            if problems.check(name in secrets, where, f"token volume refers to Secret {name!r}, which deploy/kubernetes does not define"):
                key = token_file[len(mount["mountPath"].rstrip("/")) + 1:]
                data = secrets[name].get("stringData", {}) | secrets[name].get("data", {})
                problems.check(key in data, where, f"Secret {name} has no key {key!r} for {token_file}")
            problems.check(secret.get("defaultMode") == 0o440, where, "the token file must be mode 0440")
        checked.append(f"{where}: hardening, probes, resources and mounts")

    # The sidecar example and the standalone Deployment promise the same sizing.
    exporter_resources = [c["resources"] for _, d in workloads for c in d["spec"]["template"]["spec"]["containers"]
                          if c["image"].startswith("meta-messaging-exporter:")]
    problems.check(all(r == exporter_resources[0] for r in exporter_resources), "deploy/kubernetes", "the exporter containers' resources differ between workloads")

    services = by_kind.get("Service", [])
    for path, service in services:
        where = f"{rel(path)} Service/{service['metadata']['name']}"
        selector = service["spec"]["selector"]
        matching = [d for _, d in workloads if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
        problems.check(len(matching) == 1, where, f"selects {len(matching)} workloads' pods, expected 1")
        ports = {p["name"]: p for p in service["spec"]["ports"]}
        problems.check(ports.get("metrics", {}).get("targetPort") == "metrics", where, "needs a port named metrics targeting the container port metrics")
        checked.append(f"{where}: selects its workload's pods, metrics port")

    for path, monitor in by_kind.get("ServiceMonitor", []):
        where = f"{rel(path)} ServiceMonitor/{monitor['metadata']['name']}"
        selector = monitor["spec"]["selector"]["matchLabels"]
        matching = [s for _, s in services if selector.items() <= s["metadata"].get("labels", {}).items()]
        if problems.check(len(matching) == 1, where, f"selects {len(matching)} Services, expected 1"):
            service = matching[0]
            port_names = {p["name"] for p in service["spec"]["ports"]}
            for endpoint in monitor["spec"]["endpoints"]:
                problems.check(endpoint.get("port") in port_names, where, f"endpoint port {endpoint.get('port')!r} is not a port of Service {service['metadata']['name']}")
                problems.check(endpoint.get("port") == "metrics", where, "must scrape only the metrics port")
            # The alert rules look for job="meta-messaging-exporter": the job label is the
            # Service's name unless a relabeling sets it.
            sets_job = any(r.get("targetLabel") == "job" and r.get("replacement") == "meta-messaging-exporter"
                           for e in monitor["spec"]["endpoints"] for r in e.get("relabelings", []))
            problems.check(service["metadata"]["name"] == "meta-messaging-exporter" or sets_job, where,
                           "the scraped job must be named meta-messaging-exporter for the alert rules")
        checked.append(f"{where}: selects one Service and its metrics port; job name")


def check_shards(problems, where, stateful_set, exporter, by_kind):
    """A sharded StatefulSet: each pod's shard is its ordinal, the total its replica count, and
    a headless Service of the StatefulSet's serviceName gives each pod its own scrape target."""
    envs = {e["name"]: e for e in exporter.get("env", [])}
    shard = envs.get("META_EXPORTER_SHARD", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    problems.check(shard == "metadata.labels['apps.kubernetes.io/pod-index']", where,
                   "META_EXPORTER_SHARD must come from the pod-index label (the pod's ordinal)")
    total = envs.get("META_EXPORTER_TOTAL_SHARDS", {}).get("value")
    replicas = stateful_set["spec"].get("replicas")
    problems.check(total == str(replicas), where,
                   f"META_EXPORTER_TOTAL_SHARDS ({total!r}) must equal spec.replicas ({replicas}): resize both together")
    problems.check(stateful_set["spec"].get("podManagementPolicy") == "Parallel", where,
                   "podManagementPolicy must be Parallel: shards do not depend on each other")
    services = {doc["metadata"]["name"]: doc for _, doc in by_kind.get("Service", [])}
    service = services.get(stateful_set["spec"].get("serviceName"))
    if problems.check(service is not None, where, f"serviceName {stateful_set['spec'].get('serviceName')!r} is not a Service in deploy/kubernetes"):
        problems.check(service["spec"].get("clusterIP") == "None", where,
                       "its Service must be headless (clusterIP: None), so each shard is scraped on its own")


def token_path(config_maps):
    config = config_maps.get("meta-messaging-exporter-config", {}).get("data", {}).get("config.yaml")
    if config is None:
        return None
    return (yaml.safe_load(config).get("graph_api") or {}).get("access_token_file")


def check_config_map(problems, checked, by_kind, exporter):
    """The ConfigMap's config.yaml must pass the exporter's own --config.check."""
    config_maps = {doc["metadata"]["name"]: doc for _, doc in by_kind.get("ConfigMap", [])}
    config = config_maps.get("meta-messaging-exporter-config", {}).get("data", {}).get("config.yaml")
    where = "deploy/kubernetes/configmap.yaml"
    if not problems.check(config is not None, where, "ConfigMap meta-messaging-exporter-config has no config.yaml"):
        return
    token_file = token_path(config_maps)
    if not problems.check(token_file, where, "config.yaml must read the token from graph_api.access_token_file"):
        return
    with tempfile.TemporaryDirectory() as scratch:
        # The only change: the token path, which exists in the pod, points at a scratch file.
        token = Path(scratch) / "access-token"
        token.write_text("placeholder-token-for-config-check\n")
        parsed = yaml.safe_load(config)
        parsed["graph_api"]["access_token_file"] = str(token)
        config_file = Path(scratch) / "config.yaml"
        config_file.write_text(yaml.safe_dump(parsed))
        result = subprocess.run([exporter, "--config.check", f"--config.file={config_file}"], capture_output=True, text=True)
    if problems.check(result.returncode == 0, where, f"meta-messaging-exporter --config.check rejects config.yaml:\n{result.stdout}{result.stderr}"):
        checked.append(f"{where}: config.yaml passes {rel(exporter)} --config.check")


# --------------------------------------------------------------------------- dashboard

# Grafana's own variables that may appear in an expression.
GRAFANA_BUILTINS = {"__rate_interval", "__interval", "__range"}


def check_dashboard(_args):
    problems = Problems("dashboard")
    checked = []
    with open(DASHBOARD, encoding="utf-8") as f:
        dashboard = json.load(f)
    where = rel(DASHBOARD)
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        problems.check(key in dashboard, where, f"missing {key}")
    problems.check(dashboard.get("id") is None, where, "id must be null so that importing never overwrites another dashboard")

    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    for name in ("datasource", "page", "campaign", "waba"):
        problems.check(name in variables, where, f"template variable {name} is missing")
    problems.check(variables.get("datasource", {}).get("type") == "datasource", where, "datasource must be a datasource variable, so the dashboard imports anywhere")
    for name, variable in variables.items():
        if variable.get("includeAll"):
            problems.check(variable.get("allValue") == ".*", where, f"variable {name}: allValue must be .* so 'All' also matches targets that appeared later")

    panels = dashboard["panels"]
    ids = [p["id"] for p in panels]
    problems.check(len(ids) == len(set(ids)), where, "panel ids are not unique")
    cells = {}
    expressions = 0
    for panel in panels:
        title = panel.get("title", "?")
        pwhere = f"{where} panel {panel['id']} {title!r}"
        grid = panel["gridPos"]
        problems.check(grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, pwhere, "does not fit the 24-column grid")
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                other = cells.setdefault((x, y), panel["id"])
                if other != panel["id"]:
                    problems.add(pwhere, f"overlaps panel {other}")
                    break
        if panel["type"] == "row":
            continue
        problems.check(panel.get("description"), pwhere, "needs a description (what the numbers are)")
        problems.check(panel.get("datasource", {}).get("uid") == "${datasource}", pwhere, "must use the ${datasource} variable")
        targets = panel.get("targets", [])
        problems.check(targets, pwhere, "has no queries")
        ref_ids = [t["refId"] for t in targets]
        problems.check(len(ref_ids) == len(set(ref_ids)), pwhere, "refIds are not unique")
        for target in targets:
            expr = target.get("expr", "")
            expressions += 1
            problems.check(expr.strip(), pwhere, f"query {target['refId']} has no expr")
            for used in re.findall(r"\$\{?(\w+)", expr):
                problems.check(used in variables or used in GRAFANA_BUILTINS, pwhere, f"query {target['refId']} uses undefined variable ${used}")
            # Multi-value and "All" selections expand to regexes: an equality matcher on a
            # variable would match nothing as soon as two values are selected.
            for matcher in re.findall(r'\w+\s*(!?=~?)\s*"[^"]*\$', expr):
                problems.check(matcher in ("=~", "!~"), pwhere, f"query {target['refId']}: use =~ with template variables, not {matcher}")
    checked.append(f"{where}: {len(panels)} panels, {expressions} queries, {len(variables)} variables; ids, grid, datasource, variables, matchers")

    provisioning = DEPLOY / "grafana" / "provisioning"
    datasources = load_documents(provisioning / "datasources" / "prometheus.yml")[0]
    source = datasources["datasources"][0]
    problems.check(source["type"] == "prometheus" and source.get("isDefault") is True, rel(provisioning), "the provisioned datasource must be the default Prometheus")
    providers = load_documents(provisioning / "dashboards" / "meta-messaging-exporter.yml")[0]
    problems.check(providers["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards", rel(provisioning), "the dashboard provider must read /var/lib/grafana/dashboards, where compose mounts deploy/grafana/dashboards")
    checked.append(f"{rel(provisioning)}: datasource and dashboard provider")
    problems.finish(checked)


# --------------------------------------------------------------------------- compose


def check_compose(_args):
    """What `docker compose config` cannot know: that mounted files exist and fit together."""
    problems = Problems("compose")
    checked = []
    compose = load_documents(COMPOSE)[0]
    where = rel(COMPOSE)
    services = compose["services"]
    for name in ("exporter", "prometheus", "grafana"):
        problems.check(name in services, where, f"service {name} is missing")
    exporter = services.get("exporter", {})
    problems.check("--demo" in exporter.get("command", []), where, "the exporter must run with --demo: no token needed")
    problems.check(exporter.get("read_only") is True, where, "the exporter must run with a read-only root filesystem")
    context = (COMPOSE.parent / exporter.get("build", {}).get("context", ".")).resolve()
    problems.check((context / exporter.get("build", {}).get("dockerfile", "Dockerfile")).is_file(), where, "the exporter's build context has no Dockerfile")
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, target = volume.split(":")[:2]
            if source.startswith((".", "/")):
                path = (COMPOSE.parent / source).resolve()
                problems.check(path.exists(), where, f"{name} mounts {source}, which does not exist")
                checked.append(f"{where}: {name} mounts {rel(path)} at {target}")
    prometheus_dir = DEPLOY / "prometheus"
    config = load_documents(prometheus_dir / "prometheus.yml")[0]
    scraped = [t for job in config["scrape_configs"] for sc in job.get("static_configs", []) for t in sc["targets"]]
    problems.check(f"exporter:{EXPORTER_PORT}" in scraped, rel(prometheus_dir), f"prometheus.yml must scrape exporter:{EXPORTER_PORT}")
    for rule_file in config.get("rule_files", []):
        problems.check((prometheus_dir / rule_file).is_file(), rel(prometheus_dir), f"rule file {rule_file} does not exist")
    home = services.get("grafana", {}).get("environment", {}).get("GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH", "")
    problems.check(home == "/var/lib/grafana/dashboards/" + DASHBOARD.name, where, "Grafana's home dashboard must be the mounted dashboard file")
    checked.append(f"{where}: exporter in --demo, read-only; Prometheus scrapes it; Grafana's home dashboard exists")
    problems.finish(checked)


# --------------------------------------------------------------------------- systemd

SYSTEMD_UNIT = DEPLOY / "systemd" / "meta-messaging-exporter.service"
INSTALLED_BINARY = "/usr/local/bin/meta-messaging-exporter"
# systemd-analyze security's exposure score: 0 is fully locked down, 10 is no sandbox at all.
# The unit scores 1.2; above 1.5 sandboxing was lost (granting CAP_SYS_ADMIN and dropping
# ProtectSystem and PrivateDevices scores 1.8). --threshold takes the score in tenths.
MAX_EXPOSURE = "1.5"
MAX_EXPOSURE_TENTHS = "15"


def check_systemd(args):
    """The unit passes systemd's own checks and its config recipe passes the exporter's."""
    problems = Problems("systemd")
    checked = []
    where = rel(SYSTEMD_UNIT)
    unit = SYSTEMD_UNIT.read_text()
    problems.check(f"ExecStart={INSTALLED_BINARY} " in unit, where, f"ExecStart must run {INSTALLED_BINARY}, where the instructions install it")
    with tempfile.TemporaryDirectory() as scratch:
        # verify also checks that ExecStart's binary exists: point it at the one just built.
        copy = Path(scratch) / SYSTEMD_UNIT.name
        copy.write_text(unit.replace(INSTALLED_BINARY, str(Path(args.exporter).resolve())))
        verify = subprocess.run(["systemd-analyze", "verify", str(copy)], capture_output=True, text=True)
        report = (verify.stdout + verify.stderr).strip()
        if problems.check(verify.returncode == 0 and not report, where, f"systemd-analyze verify:\n{report}"):
            checked.append(f"{where}: systemd-analyze verify reports nothing")
        security = subprocess.run(["systemd-analyze", "security", "--offline=yes", f"--threshold={MAX_EXPOSURE_TENTHS}", "--no-pager", str(copy)],
                                  capture_output=True, text=True)
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", security.stdout)
        if problems.check(security.returncode == 0 and score, where, f"systemd-analyze security exposure above {MAX_EXPOSURE}:\n{security.stdout[-2000:]}{security.stderr}"):
            checked.append(f"{where}: systemd-analyze security exposure {score.group(1)} (at most {MAX_EXPOSURE})")

        # The unit's recipe: config.yaml reads the token from the credential directory.
        credentials = Path(scratch) / "credentials"
        credentials.mkdir()
        (credentials / "access-token").write_text("placeholder-token-for-config-check\n")
        config_maps = {doc["metadata"]["name"]: doc for doc in load_documents(KUBERNETES / "configmap.yaml")}
        config = yaml.safe_load(config_maps["meta-messaging-exporter-config"]["data"]["config.yaml"])
        config["graph_api"]["access_token_file"] = "${CREDENTIALS_DIRECTORY}/access-token"
        problems.check("access_token_file: ${CREDENTIALS_DIRECTORY}/access-token" in unit, where, "the unit's comment must show the access_token_file line checked here")
        config_file = Path(scratch) / "config.yaml"
        config_file.write_text(yaml.safe_dump(config))
        env = dict(os.environ, CREDENTIALS_DIRECTORY=str(credentials))
        result = subprocess.run([args.exporter, "--config.check", f"--config.file={config_file}"], capture_output=True, text=True, env=env)
        if problems.check(result.returncode == 0, where, f"a config with access_token_file: ${{CREDENTIALS_DIRECTORY}}/access-token fails --config.check:\n{result.stdout}{result.stderr}"):
            checked.append(f"{where}: access_token_file: ${{CREDENTIALS_DIRECTORY}}/access-token passes --config.check")
    problems.finish(checked)


# --------------------------------------------------------------------------- dockerfile

DOCKERFILE_INSTRUCTIONS = {
    "from", "run", "cmd", "label", "expose", "env", "add", "copy", "entrypoint", "volume",
    "user", "workdir", "arg", "onbuild", "stopsignal", "healthcheck", "shell",
}


def dockerignore_context(root):
    """The files `docker build` sends, following .dockerignore's rules for the patterns used
    here: a pattern matches a path or any of its parent directories, the last matching pattern
    wins, and `!` re-includes."""
    patterns = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        pattern = pattern.strip("/")
        problems_with = set(pattern) & set("[]\\")
        if problems_with or "**" in pattern:
            raise SystemExit(f".dockerignore: pattern {line!r} uses syntax this check does not implement")
        patterns.append((negate, pattern))
    listed = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True, cwd=root).stdout
    included = []
    for path in filter(None, listed.decode().split("\0")):
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        keep = True
        for negate, pattern in patterns:
            if any(fnmatch.fnmatchcase(prefix, pattern) for prefix in prefixes):
                keep = negate
        if keep:
            included.append(path)
    return included


def check_dockerfile(args):
    import dockerfile

    problems = Problems("dockerfile")
    checked = []
    where = "Dockerfile"
    commands = dockerfile.parse_file(str(ROOT / "Dockerfile"))
    for command in commands:
        problems.check(command.cmd.lower() in DOCKERFILE_INSTRUCTIONS, f"{where}:{command.start_line}", f"unknown instruction {command.cmd}")
    stages = []
    for command in commands:
        if command.cmd.lower() == "from":
            stages.append([])
        if stages:
            stages[-1].append(command)
    if problems.check(len(stages) == 2, where, f"expected a build and a runtime stage, found {len(stages)}"):
        build, runtime = stages
        runs = " ".join(" ".join(c.value) for c in build if c.cmd.lower() == "run")
        problems.check("cargo build --release --locked" in runs, where, "the build stage must run CI's `cargo build --release --locked`")
        build_args = {c.value[0].split("=", 1)[0]: c.value[0].split("=", 1)[1] for c in commands if c.cmd.lower() == "arg" and "=" in c.value[0]}
        problems.check(build_args.get("RUNTIME_IMAGE", "").startswith("gcr.io/distroless/cc-debian12"), where, "the runtime must be distroless cc (the binary links glibc)")
        problems.check(build_args.get("RUST_IMAGE", "").endswith("-bookworm"), where, "build on Debian 12, the runtime's release, so glibc versions match")
        users = [c.value[0] for c in runtime if c.cmd.lower() == "user"]
        problems.check(users and re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", users[-1]) and users[-1].split(":")[0] == str(NONROOT_UID), where, f"the runtime must end as numeric non-root user {NONROOT_UID}")
        exposes = [v for c in runtime if c.cmd.lower() == "expose" for v in c.value]
        problems.check(str(EXPORTER_PORT) in exposes, where, f"the runtime must EXPOSE {EXPORTER_PORT}")
        entrypoints = [c for c in runtime if c.cmd.lower() == "entrypoint"]
        problems.check(entrypoints and entrypoints[-1].json, where, "ENTRYPOINT must be in exec form so signals reach the exporter")
        envs = dict(zip(*[iter(v for c in runtime if c.cmd.lower() == "env" for v in c.value)] * 2))
        problems.check(envs.get("META_EXPORTER_CONFIG_FILE") == f"{CONFIG_DIR}/config.yaml", where, f"META_EXPORTER_CONFIG_FILE must be {CONFIG_DIR}/config.yaml, where the Kubernetes manifests mount it")
        labels = dict(zip(*[iter(v for c in runtime if c.cmd.lower() == "label" for v in c.value)] * 2))
        for label in ("title", "description", "version", "revision", "licenses", "base.name"):
            problems.check(f"org.opencontainers.image.{label}" in labels, where, f"missing OCI label org.opencontainers.image.{label}")
        cargo = (ROOT / "Cargo.toml").read_text()
        version = re.search(r'^version = "([^"]+)"', cargo, re.M).group(1)
        problems.check(build_args.get("VERSION") == version, where, f"ARG VERSION={build_args.get('VERSION')} differs from Cargo.toml's {version}")
        license_ = re.search(r'^license = "([^"]+)"', cargo, re.M).group(1)
        problems.check(labels.get("org.opencontainers.image.licenses", "").strip('"') == license_, where, f"the licenses label must be Cargo.toml's {license_}")
        checked.append(f"{where}: parsed by BuildKit's parser; {len(commands)} instructions, 2 stages, CI's build command, distroless non-root runtime, port, exec entrypoint, config path, OCI labels")

    # The context .dockerignore lets through must be enough for the build: copy exactly those
    # files and let cargo load the manifest with every declared target and resolve the lock
    # file there. `cargo fetch` fails on a missing target file; `cargo metadata` alone would
    # silently leave the target out.
    context = dockerignore_context(ROOT)
    problems.check(not any(p.startswith(("target/", ".git/", "deploy/")) or p.endswith((".env", ".token")) for p in context), ".dockerignore", "the context includes files the image does not need")
    with tempfile.TemporaryDirectory() as scratch:
        for path in context:
            (Path(scratch) / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, Path(scratch) / path)
        fetch = subprocess.run(["cargo", "fetch", "--locked", "--offline"], cwd=scratch, capture_output=True, text=True)
        problems.check(fetch.returncode == 0, ".dockerignore", f"cargo cannot load the package from the build context:\n{fetch.stderr}")
        result = subprocess.run(["cargo", "metadata", "--locked", "--offline", "--format-version", "1"], cwd=scratch, capture_output=True, text=True)
        problems.check(result.returncode == 0, ".dockerignore", f"cargo metadata fails in the build context:\n{result.stderr}")
        if result.returncode == 0:
            package = next(p for p in json.loads(result.stdout)["packages"] if p["name"] == "meta-messaging-exporter")
            for target in package["targets"]:
                if not Path(target["src_path"]).is_file():
                    problems.add(".dockerignore", f"target {target['name']} needs {rel(target['src_path'])}, which the context lacks")
    checked.append(f".dockerignore: context of {len(context)} files; cargo fetch --locked loads the package, its targets and the lock file from it")

    if args.binary:
        check_release_binary(problems, checked, Path(args.binary))
    problems.finish(checked)


# What distroless cc-debian12 provides for a dynamically linked binary: glibc 2.36 and libgcc.
RUNTIME_LIBRARIES = {"libc.so.6", "libm.so.6", "ld-linux-x86-64.so.2", "libgcc_s.so.1"}
RUNTIME_GLIBC = (2, 36)


def check_release_binary(problems, checked, binary):
    """The binary the build stage produces runs on the runtime image: it needs only libraries
    the image has (no OpenSSL: TLS is rustls) and no newer glibc than Debian 12's."""
    where = rel(binary)
    dynamic = subprocess.run(["readelf", "--dynamic", str(binary)], capture_output=True, text=True, check=True).stdout
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
    problems.check(needed <= RUNTIME_LIBRARIES, where, f"needs {sorted(needed - RUNTIME_LIBRARIES)}, which distroless cc-debian12 lacks")
    symbols = subprocess.run(["objdump", "--dynamic-syms", str(binary)], capture_output=True, text=True, check=True).stdout
    versions = {tuple(int(part) for part in v.split(".")) for v in re.findall(r"GLIBC_([0-9]+(?:\.[0-9]+)+)", symbols)}
    newest = max(versions)
    problems.check(newest <= RUNTIME_GLIBC, where, f"needs glibc {'.'.join(map(str, newest))}, newer than Debian 12's {'.'.join(map(str, RUNTIME_GLIBC))}")
    size = binary.stat().st_size
    checked.append(f"{where}: {size:,} bytes ({size / 2**20:.1f} MiB); links {', '.join(sorted(needed))}; glibc at most {'.'.join(map(str, newest))}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    kubernetes = sub.add_parser("kubernetes", help="validate deploy/kubernetes")
    kubernetes.add_argument("--exporter", required=True, help="the exporter binary, for --config.check")
    sub.add_parser("dashboard", help="check the Grafana dashboard and provisioning")
    sub.add_parser("compose", help="check deploy/docker-compose.yml's files")
    dockerfile_parser = sub.add_parser("dockerfile", help="check the Dockerfile and .dockerignore")
    dockerfile_parser.add_argument("--binary", help="also check this release binary against the runtime image")
    systemd = sub.add_parser("systemd", help="check deploy/systemd")
    systemd.add_argument("--exporter", required=True, help="the exporter binary, for verify and --config.check")
    args = parser.parse_args()
    {
        "kubernetes": check_kubernetes,
        "dashboard": check_dashboard,
        "compose": check_compose,
        "dockerfile": check_dockerfile,
        "systemd": check_systemd,
    }[args.command](args)


if __name__ == "__main__":
    main()
