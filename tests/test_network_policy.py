"""Default-deny networking plus the allows serving needs."""

from conftest import k8s, stack_config

from inference.plan.build import _service_namespace


def test_default_deny_and_allows(project):
    run = project.run(config=stack_config(allowedClientNamespaces=["inference", "gateway"]))
    deny = k8s(run, "NetworkPolicy", "default-deny")["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    clients = k8s(run, "NetworkPolicy", "allow-model-clients")["spec"]
    selector = clients["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]
    assert selector["values"] == ["inference", "gateway"]
    assert clients["ingress"][0]["ports"] == [{"protocol": "TCP", "port": "http"}]
    scrape = k8s(run, "NetworkPolicy", "allow-metrics-scrape")["spec"]
    assert scrape["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["monitoring"]
    egress = k8s(run, "NetworkPolicy", "allow-prefetch-egress")["spec"]
    assert egress["podSelector"] == {"matchLabels": {"app.kubernetes.io/component": "prefetch"}}
    assert egress["egress"][0]["to"][0]["ipBlock"] == {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}
    dns = k8s(run, "NetworkPolicy", "allow-dns")["spec"]["egress"][0]["ports"]
    assert {"protocol": "UDP", "port": 53} in dns


def test_client_namespaces_default_to_the_model_namespace(project):
    run = project.run(config=stack_config(namespace="llm"))
    spec = k8s(run, "NetworkPolicy", "allow-model-clients")["spec"]
    assert spec["ingress"][0]["from"][0]["namespaceSelector"]["matchExpressions"][0]["values"] == ["llm"]


def test_metrics_namespace_from_prometheus_url():
    assert _service_namespace("http://prometheus-operated.monitoring.svc:9090", "ns") == "monitoring"
    assert _service_namespace("http://kps-prometheus.observability.svc.cluster.local:9090/", "ns") == "observability"
    assert _service_namespace("https://prometheus.example.com", "ns") == "ns"
