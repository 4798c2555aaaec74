#!/usr/bin/env python3
"""Tests of the Helm chart charts/signet, rendered offline by Helm v4's own Go SDK
(helm-python-sdk, no helm binary) and validated against Kubernetes' OpenAPI schemas
(kubernetes-validate). Run by `cargo test -p signet-deploy-tests --test chart`, or directly:

    python3 tests/chart/test_chart.py

Needs the packages of .ci/install-deps-deploy. Prints one line per test and closes with
'N passed, N failed'; exits non-zero on any failure.
"""
import base64
import copy
import datetime
import json
import pathlib
import sys
import traceback

import helm_python as helm
import kubernetes_validate
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "signet"
NAMESPACE = "gatekeeper-system"
K8S_VERSION = "1.30"
AKS_VALUES = yaml.safe_load((ROOT / "examples" / "net-monitor" / "values-aks.yaml").read_text())
TEST_CA = """-----BEGIN CERTIFICATE-----
MIIBszCCAVmgAwIBAgIUZ3q0V5pD7m2c0o3k0b2m7m8m0m8wCgYIKoZIzj0EAwIw
-----END CERTIFICATE-----
"""
# Kinds Kubernetes' schemas do not know: checked by hand below.
CUSTOM_KINDS = {
    "Provider",
    "ConstraintTemplate",
    "SignetVerifiedImages",
    "Assign",
    "Certificate",
    "ServiceMonitor",
}


def merge(base, extra):
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def render(values=None, name="signet", namespace=NAMESPACE):
    """Renders the chart as `helm template` would (values validated against the schema)."""
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values or {})
        manifests = chart.render(values or {}, name=name, namespace=namespace, is_install=True)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.safe_load_all(text):
            if doc:
                doc["__source__"] = path
                objects.append(doc)
    return objects, manifests


def notes(manifests):
    return next(text for path, text in manifests.items() if path.endswith("NOTES.txt"))


def only(objects, kind, name=None):
    found = [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert len(found) == 1, f"expected one {kind} {name or ''}, found {len(found)}"
    return found[0]


def all_of(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def validate_k8s(objects):
    for obj in objects:
        obj = {k: v for k, v in obj.items() if k != "__source__"}
        if obj["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def config_of(objects):
    cm = only(objects, "ConfigMap", "signet-config")
    return yaml.safe_load(cm["data"]["config.yaml"]), json.loads(cm["data"]["trustpolicy.json"])


def container(objects):
    dep = only(objects, "Deployment")
    (c,) = dep["spec"]["template"]["spec"]["containers"]
    return dep, c


def mounted_paths(objects):
    dep, c = container(objects)
    volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
    out = {}
    for m in c["volumeMounts"]:
        out[m["mountPath"]] = (volumes[m["name"]], m)
    return out


def load_cert(pem):
    return x509.load_pem_x509_certificate(pem.encode() if isinstance(pem, str) else pem)


def assert_signed_by(cert, ca):
    pub = ca.public_key()
    if isinstance(pub, rsa.RSAPublicKey):
        pub.verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(), cert.signature_hash_algorithm)
    elif isinstance(pub, ec.EllipticCurvePublicKey):
        pub.verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    else:
        raise AssertionError(f"unexpected CA key {type(pub)}")
    assert cert.issuer == ca.subject


# ---------------------------------------------------------------------------------------


def test_default_render_is_valid_kubernetes():
    objects, _ = render()
    validate_k8s(objects)
    kinds = sorted(o["kind"] for o in objects)
    for kind in ["ConfigMap", "Deployment", "PodDisruptionBudget", "Provider", "Secret", "Service", "ServiceAccount"]:
        assert kind in kinds, f"{kind} missing from {kinds}"
    for obj in objects:
        if obj["kind"] != "Provider":
            assert obj["metadata"].get("namespace") == NAMESPACE, obj["metadata"]


def test_pod_security():
    objects, _ = render()
    dep, c = container(objects)
    pod = dep["spec"]["template"]["spec"]
    psc, csc = pod["securityContext"], c["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == 65532
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert csc["readOnlyRootFilesystem"] is True
    assert csc["allowPrivilegeEscalation"] is False
    assert csc["capabilities"]["drop"] == ["ALL"]
    assert isinstance(csc["runAsUser"], int) and csc["runAsUser"] != 0
    assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["memory"]
    assert pod["automountServiceAccountToken"] is False
    assert c["args"] == ["serve", "--config", "/etc/signet/config.yaml"]
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "https", "scheme": "HTTPS"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "https", "scheme": "HTTPS"}


def test_provider_and_generated_mutual_tls_in_one_render():
    # `helm template` / GitOps: lookup finds nothing; the CA that signed the server
    # certificate must be the Providers' caBundle from the same render.
    objects, _ = render()
    verify = only(objects, "Provider", "signet")
    mutate = only(objects, "Provider", "signet-mutate")
    assert verify["apiVersion"] == "externaldata.gatekeeper.sh/v1beta1"
    assert verify["spec"]["url"] == "https://signet.gatekeeper-system:8443/v1/verify"
    assert mutate["spec"]["url"] == "https://signet.gatekeeper-system:8443/v1/mutate"
    assert isinstance(verify["spec"]["timeout"], int) and verify["spec"]["timeout"] >= 1
    assert "namespace" not in verify["metadata"], "Provider is cluster-scoped"
    secret = only(objects, "Secret", "signet-tls")
    assert secret["type"] == "kubernetes.io/tls"
    ca_pem = base64.b64decode(secret["data"]["ca.crt"])
    assert base64.b64decode(verify["spec"]["caBundle"]) == ca_pem
    assert mutate["spec"]["caBundle"] == verify["spec"]["caBundle"]
    ca = load_cert(ca_pem)
    server = load_cert(base64.b64decode(secret["data"]["tls.crt"]))
    assert_signed_by(server, ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    assert "signet.gatekeeper-system" in sans, sans
    assert "signet.gatekeeper-system.svc" in sans, sans
    assert server.not_valid_after_utc > datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=365)
    # The server mounts that secret; Gatekeeper's CA is mounted for client verification.
    mounts = mounted_paths(objects)
    tls_vol, _ = mounts["/etc/signet/tls"]
    assert tls_vol["secret"]["secretName"] == "signet-tls"
    ca_vol, _ = mounts["/etc/signet/client-ca"]
    assert ca_vol["secret"] == {
        "secretName": "gatekeeper-webhook-server-cert",
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }


def test_config_points_at_mounted_files():
    objects, _ = render()
    config, policy = config_of(objects)
    for key in ["listen", "tls", "trustPolicy", "trustStore", "registryCAs", "plainHttp", "requestDeadline", "cache", "admission"]:
        assert key in config, f"config.yaml lacks {key}: {config}"
    assert config["listen"].endswith(":8443")
    assert set(config["tls"]) == {"certFile", "keyFile", "clientCAFile"}
    mounts = mounted_paths(objects)
    _, c = container(objects)
    assert any(m["mountPath"] == "/etc/signet/config.yaml" for m in c["volumeMounts"])
    for path in [config["tls"]["certFile"], config["tls"]["keyFile"], config["tls"]["clientCAFile"]]:
        directory = str(pathlib.PurePosixPath(path).parent)
        assert directory in mounts, f"{path} is not under a mount: {sorted(mounts)}"
    assert config["trustPolicy"] in mounts and config["trustStore"] in mounts
    assert policy["version"] == "1.0" and policy["trustPolicies"][0]["name"] == "default"
    assert config["admission"]["excludedNamespaces"] == ["kube-system", "gatekeeper-system"]
    # The config checksum rolls the pods when the configuration changes.
    dep, _ = container(objects)
    before = dep["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
    objects2, _ = render({"cache": {"verifiedTTL": "5m"}})
    dep2, _ = container(objects2)
    assert dep2["spec"]["template"]["metadata"]["annotations"]["checksum/config"] != before


def test_pdb_and_anti_affinity_only_with_replicas():
    objects, _ = render({"replicaCount": 3})
    dep, _ = container(objects)
    only(objects, "PodDisruptionBudget")
    assert "podAntiAffinity" in dep["spec"]["template"]["spec"]["affinity"]
    objects, _ = render({"replicaCount": 1})
    dep, _ = container(objects)
    assert not all_of(objects, "PodDisruptionBudget")
    assert "affinity" not in dep["spec"]["template"]["spec"]


def test_aks_values():
    objects, manifests = render(AKS_VALUES)
    validate_k8s(objects)
    sa = only(objects, "ServiceAccount")
    assert sa["metadata"]["annotations"]["azure.workload.identity/client-id"] == AKS_VALUES["azureWorkloadIdentity"]["clientId"]
    dep, _ = container(objects)
    assert dep["spec"]["template"]["metadata"]["labels"]["azure.workload.identity/use"] == "true"
    assert dep["spec"]["template"]["spec"]["serviceAccountName"] == sa["metadata"]["name"]
    config, policy = config_of(objects)
    assert config["azure"]["acrRegistries"] == ["myregistry.azurecr.io"]
    assert policy["trustPolicies"][0]["trustStores"] == ["ca:wabbit-networks"]
    # The trust store ConfigMap is mounted in Notation's layout.
    store = only(objects, "ConfigMap", "signet-truststore")
    assert "ca.wabbit-networks.ca.pem" in store["data"]
    vol, _ = mounted_paths(objects)["/etc/signet/truststore"]
    assert vol["configMap"]["items"] == [{"key": "ca.wabbit-networks.ca.pem", "path": "x509/ca/wabbit-networks/ca.pem"}]
    assert "federated identity credential" in notes(manifests)


def test_walkthrough_set_flags_are_valid():
    # The flags examples/net-monitor/README.md passes on top of values-aks.yaml.
    flags = helm.parse_set_string(
        "azureWorkloadIdentity.clientId=11111111-2222-3333-4444-555555555555,"
        "registry.acrRegistries[0]=contoso.azurecr.io,"
        "trustStore.ca.wabbit-networks.ca\\.pem=FILE"
    )
    assert flags["trustStore"]["ca"]["wabbit-networks"] == {"ca.pem": "FILE"}, flags
    readme = (ROOT / "examples" / "net-monitor" / "README.md").read_text()
    assert "--set azureWorkloadIdentity.clientId=" in readme
    assert '--set "registry.acrRegistries[0]=' in readme
    assert "--set-file 'trustStore.ca.wabbit-networks.ca\\.pem=" in readme
    assert "-f examples/net-monitor/values-aks.yaml" in readme
    flags["trustStore"]["ca"]["wabbit-networks"]["ca.pem"] = TEST_CA  # --set-file reads the PEM
    values = merge(AKS_VALUES, flags)
    objects, _ = render(values)
    config, _ = config_of(objects)
    assert config["azure"]["acrRegistries"] == ["contoso.azurecr.io"]


def test_policy_objects():
    objects, _ = render({"policy": {"enabled": True, "mutation": {"enabled": True}}})
    template = only(objects, "ConstraintTemplate")
    source = yaml.safe_load((ROOT / "policy" / "template.yaml").read_text())
    labels = template["metadata"].pop("labels")
    del template["__source__"]
    assert labels["app.kubernetes.io/part-of"] == "signet"
    assert template == source, "chart's ConstraintTemplate differs from policy/template.yaml"
    constraint = only(objects, "SignetVerifiedImages")
    assert constraint["spec"]["match"]["excludedNamespaces"] == ["kube-system", "gatekeeper-system"]
    assert constraint["spec"]["match"]["kinds"] == [{"apiGroups": [""], "kinds": ["Pod"]}]
    assigns = all_of(objects, "Assign")
    locations = sorted(a["spec"]["location"] for a in assigns)
    assert locations == sorted([
        "spec.containers[name:*].image",
        "spec.initContainers[name:*].image",
        "spec.ephemeralContainers[name:*].image",
        "spec.template.spec.containers[name:*].image",
        "spec.template.spec.initContainers[name:*].image",
        "spec.jobTemplate.spec.template.spec.containers[name:*].image",
        "spec.jobTemplate.spec.template.spec.initContainers[name:*].image",
    ]), locations
    for a in assigns:
        assert a["apiVersion"] == "mutations.gatekeeper.sh/v1"
        ext = a["spec"]["parameters"]["assign"]["externalData"]
        assert ext == {"provider": "signet-mutate", "dataSource": "ValueAtLocation", "failurePolicy": "Fail"}, ext
        # applyTo and match name the same kinds.
        apply = sorted((g, k) for t in a["spec"]["applyTo"] for g in t["groups"] for k in t["kinds"])
        match = sorted((g, k) for t in a["spec"]["match"]["kinds"] for g in t["apiGroups"] for k in t["kinds"])
        assert apply == match, (apply, match)
    objects, _ = render()
    assert not all_of(objects, "ConstraintTemplate") and not all_of(objects, "Assign")


def test_chart_policy_copies_equal_the_originals():
    pairs = [(CHART / "files" / "template.yaml", ROOT / "policy" / "template.yaml")]
    originals = sorted((ROOT / "policy" / "mutation").glob("*.yaml"))
    copies = sorted((CHART / "files" / "mutation").glob("*.yaml"))
    assert [p.name for p in originals] == [p.name for p in copies]
    pairs += list(zip(copies, originals))
    for copy_, original in pairs:
        assert copy_.read_bytes() == original.read_bytes(), f"{copy_} differs from {original}: copy it over"


def test_cert_manager():
    values = {
        "certManager": {"enabled": True, "issuerRef": {"name": "signet-ca", "kind": "ClusterIssuer"}},
        "tls": {"caBundle": TEST_CA},
        "metrics": {"serviceMonitor": {"enabled": True}},
    }
    objects, _ = render(values)
    validate_k8s(objects)
    cert = only(objects, "Certificate")
    assert cert["spec"]["secretName"] == "signet-tls"
    assert "signet.gatekeeper-system.svc" in cert["spec"]["dnsNames"]
    assert cert["spec"]["issuerRef"]["name"] == "signet-ca"
    assert not all_of(objects, "Secret")
    assert base64.b64decode(only(objects, "Provider", "signet")["spec"]["caBundle"]).decode() == TEST_CA
    sm = only(objects, "ServiceMonitor")
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    try:
        render({"certManager": {"enabled": True, "issuerRef": {"name": "x"}}})
    except helm.HelmError as exc:
        assert "caBundle" in str(exc), exc
    else:
        raise AssertionError("cert-manager without tls.caBundle must fail")


def test_workload_identity_requires_client_id():
    try:
        render({"azureWorkloadIdentity": {"enabled": True}})
    except helm.HelmError as exc:
        assert "clientId" in str(exc), exc
    else:
        raise AssertionError("workload identity without a client ID must fail")


def expect_schema_rejection(values, needle):
    with helm.Chart.load(str(CHART)) as chart:
        try:
            chart.validate_schema(values)
        except helm.HelmError as exc:
            assert needle in str(exc), f"{needle!r} not in {exc}"
        else:
            raise AssertionError(f"schema accepted {values}")
        try:
            chart.render(values, name="signet", namespace=NAMESPACE)
        except helm.HelmError:
            pass
        else:
            raise AssertionError(f"render accepted {values}")


def test_schema_rejects_unknown_keys():
    expect_schema_rejection({"replicas": 2}, "replicas")
    expect_schema_rejection({"image": {"repo": "x"}}, "repo")
    expect_schema_rejection({"policy": {"mutation": {"enable": True}}}, "enable")
    expect_schema_rejection({"azureWorkloadIdentity": {"clientID": "x"}}, "clientID")


def test_schema_rejects_wrong_types():
    expect_schema_rejection({"replicaCount": "two"}, "replicaCount")
    expect_schema_rejection({"service": {"port": 70000}}, "port")
    expect_schema_rejection({"server": {"requestDeadline": "soon"}}, "requestDeadline")
    expect_schema_rejection({"policy": {"enforcementAction": "block"}}, "enforcementAction")
    expect_schema_rejection({"trustStore": {"ca": {"x": {"a.pem": "not a certificate"}}}}, "a.pem")
    expect_schema_rejection({"trustPolicy": {"version": "2.0", "trustPolicies": []}}, "version")


def test_default_values_and_every_documented_key_pass_the_schema():
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(chart.values)
        chart.validate_schema(AKS_VALUES)


def test_helm_lint():
    report = helm.lint(str(CHART), strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
    assert not problems, problems


def main():
    tests = [(name, fn) for name, fn in sorted(globals().items()) if name.startswith("test_") and callable(fn)]
    passed = failed = 0
    for name, fn in tests:
        try:
            fn()
        except Exception:  # noqa: BLE001 - report every failure
            failed += 1
            print(f"FAIL {name}")
            traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
