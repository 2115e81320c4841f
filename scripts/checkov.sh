#!/usr/bin/env bash
# checkov on the rendered Kubernetes manifests, in its own virtual environment (its dependencies conflict with ours).
#
#   scripts/checkov.sh [STACK ...]        default: dev prod
#   MODELS=examples/models-405b.yaml scripts/checkov.sh prod     a models file other than the stack's
#
# checkov knows no LeaderWorkerSet (it scans 0 resources from one): each LeaderWorkerSet's leader and worker pod
# templates are scanned as Pods instead, carrying the LeaderWorkerSet's own skip annotations.
# Creates .venv-checkov (or $CHECKOV_VENV) with checkov pinned when it is missing or holds another version, renders
# each stack into a temporary directory with venv/bin/python -m offline.render and scans build/<stack>/k8s.
# Exits 1 when any check fails, a manifest does not parse or nothing was scanned. Accepted findings are skipped
# only by annotations on the objects (components/conventions.py), never by command-line flags.
set -euo pipefail

CHECKOV_VERSION=3.3.30
cd "$(dirname "$0")/.."
venv=${CHECKOV_VENV:-.venv-checkov}
stacks=("$@")
[[ ${#stacks[@]} -gt 0 ]] || stacks=(dev prod)

installed=$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null || true)
if [[ "$installed" != "$CHECKOV_VERSION" ]]; then
    echo "installing checkov $CHECKOV_VERSION into $venv"
    venv/bin/python -m venv --clear "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION"
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
status=0
for stack in "${stacks[@]}"; do
    echo "== checkov: stack $stack"
    venv/bin/python -m offline.render --stack "$stack" ${MODELS:+--models "$MODELS"} --out "$out/render" >/dev/null
    venv/bin/python - "$out/render/$stack/k8s" <<'PODS'
import pathlib, sys, yaml
for path in pathlib.Path(sys.argv[1]).glob("leaderworkerset-*.yaml"):
    lws = yaml.safe_load(path.read_text())
    meta = lws["metadata"]
    for role, key in (("leader", "leaderTemplate"), ("worker", "workerTemplate")):
        template = lws["spec"]["leaderWorkerTemplate"][key]
        own = template.get("metadata", {})
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": template["spec"], "metadata": {
            **own, "name": f"{meta['name']}-{role}", "namespace": meta["namespace"],
            "annotations": {**own.get("annotations", {}), **meta.get("annotations", {})}}}
        path.with_name(f"pod-{meta['namespace']}-{meta['name']}-{role}.yaml").write_text(yaml.safe_dump(pod))
    path.unlink()
PODS
    # --skip-download: no calls to the vendor's platform; the checks themselves ship with the package.
    "$venv/bin/checkov" --framework kubernetes -d "$out/render/$stack/k8s" --quiet --compact --skip-download \
        -o cli -o json --output-file-path "console,$out/$stack.json" || true
    # checkov exits 0 when it parsed nothing, so judge by its own summary.
    "$venv/bin/python" - "$out/$stack.json" "$out/render/$stack/k8s" "$stack" <<'EOF' || status=1
import json, pathlib, sys
summary = json.loads(pathlib.Path(sys.argv[1]).read_text())["summary"]
files = len(list(pathlib.Path(sys.argv[2]).glob("*.yaml")))
problems = [f"{summary['failed']} failed checks"] if summary["failed"] else []
if summary["parsing_errors"]:
    problems.append(f"{summary['parsing_errors']} manifests checkov could not parse")
if summary["resource_count"] < files or not summary["passed"]:
    problems.append(f"checkov scanned {summary['resource_count']} resources from {files} manifests")
print(f"stack {sys.argv[3]}: {summary['passed']} passed, {summary['failed']} failed, "
      f"{summary['skipped']} skipped by annotation, {files} manifests")
if problems:
    sys.exit("checkov: " + "; ".join(problems))
EOF
done
exit $status
