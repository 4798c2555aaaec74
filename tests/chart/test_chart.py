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


class StrictLoader(yaml.SafeLoader):
    """A YAML loader that refuses duplicate keys (which Kubernetes and kubectl may reject,
    or resolve differently than PyYAML's last-one-wins)."""


def _construct_mapping(loader, node, deep=False):
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {sorted(duplicates)}", node.start_mark)
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def merge(base, extra):
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def render(values=None, name="signet", namespace=NAMESPACE, upgrade=False):
    """Renders the chart as `helm template` would (values validated against the schema)."""
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(values or {})
        manifests = chart.render(values or {}, name=name, namespace=namespace,
                                 is_install=not upgrade, is_upgrade=upgrade)
    objects = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        for doc in yaml.load_all(text, Loader=StrictLoader):
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
        if obj["kind"] not in ("Provider", "Assign", "ConstraintTemplate", "SignetVerifiedImages"):
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
    # kubelet has no client certificate: the probes use the plain-HTTP metrics listener.
    assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics", "scheme": "HTTP"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics", "scheme": "HTTP"}
    config, _ = config_of(objects)
    metrics = next(p for p in c["ports"] if p["name"] == "metrics")
    assert config["metricsListen"] == f"0.0.0.0:{metrics['containerPort']}"


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
    # optional: a missing Gatekeeper secret does not hold the pod in ContainerCreating; the
    # install itself fails with what to do (lookup, see test_client_ca_missing_is_explained).
    assert ca_vol["secret"] == {
        "secretName": "gatekeeper-webhook-server-cert",
        "optional": True,
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    # The CA the Providers trust, for other clients (the helm test pod).
    ca_cm = only(objects, "ConfigMap", "signet-ca")
    assert ca_cm["data"]["ca.crt"].strip() == ca_pem.decode().strip()


def test_config_points_at_mounted_files():
    objects, _ = render()
    config, policy = config_of(objects)
    # The schema of crates/signet/src/config/mod.rs (tests/tests/chart.rs runs signet's own validator).
    assert set(config) == {"listen", "metricsListen", "tls", "trust", "registry", "limits", "cache", "admission", "revocation", "log"}, config
    assert config["revocation"] == {"enabled": True, "fetchTimeout": "5s", "maxCrlAge": "1h", "allow": [], "deny": []}
    assert config["listen"].endswith(":8443")
    assert config["cache"] == {"successTTL": "10m", "failureTTL": "30s", "tagTTL": "1m"}
    assert config["limits"] == {"requestDeadline": "1500ms", "maxHandshakes": 64, "maxHandshakesPerPeer": 16, "handshakeTimeout": "2s", "maxConnections": 1024}
    assert config["log"] == {"level": "info"}
    assert config["registry"] == {"caFiles": [], "plainHttp": []}
    assert set(config["tls"]) == {"certFile", "keyFile", "clientCAFile"}
    mounts = mounted_paths(objects)
    _, c = container(objects)
    assert any(m["mountPath"] == "/etc/signet/config.yaml" for m in c["volumeMounts"])
    for path in [config["tls"]["certFile"], config["tls"]["keyFile"], config["tls"]["clientCAFile"]]:
        directory = str(pathlib.PurePosixPath(path).parent)
        assert directory in mounts, f"{path} is not under a mount: {sorted(mounts)}"
    assert config["trust"]["policyFile"] in mounts and config["trust"]["storeRoot"] in mounts
    assert policy["version"] == "1.0" and policy["trustPolicies"][0]["name"] == "default"
    assert config["admission"]["excludeNamespaces"] == ["kube-system", "gatekeeper-system"]
    # Registry files are mounted where the configuration says.
    objects3, _ = render({"registry": {"dockerConfigSecret": "pull", "caCertificates": TEST_CA}})
    config3, _ = config_of(objects3)
    mounts3 = mounted_paths(objects3)
    for path in [config3["registry"]["dockerConfig"], *config3["registry"]["caFiles"]]:
        assert str(pathlib.PurePosixPath(path).parent) in mounts3, path
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
    azure = config["azure"]
    assert azure["workloadIdentity"] is True
    assert azure["clientId"] == AKS_VALUES["azureWorkloadIdentity"]["clientId"]
    assert azure["acrRegistries"] == ["myregistry.azurecr.io"]
    # Key Vault is the trust anchor: every store the policy names comes from it.
    assert azure["keyVault"] == {
        "url": "https://myvault.vault.azure.net",
        "refreshInterval": "1h",
        "certificates": [{"name": "wabbit-networks-io", "store": "ca:wabbit-networks"}],
    }
    kv_stores = {c["store"] for c in azure["keyVault"]["certificates"]}
    for statement in policy["trustPolicies"]:
        assert set(statement["trustStores"]) <= kv_stores, statement
    assert "federated identity credential" in notes(manifests)
    # Trust stores from values still work next to Key Vault, in Notation's layout.
    objects, _ = render(merge(AKS_VALUES, {"trustStore": {"ca": {"extra": {"ca.pem": TEST_CA}}}}))
    vol, _ = mounted_paths(objects)["/etc/signet/truststore"]
    assert vol["configMap"]["items"] == [{"key": "ca.extra.ca.pem", "path": "x509/ca/extra/ca.pem"}]


WALKTHROUGH_SET = (
    "azureWorkloadIdentity.clientId=11111111-2222-3333-4444-555555555555,"
    "registry.acrRegistries[0]=contoso.azurecr.io,"
    "azureKeyVault.url=https://contoso-kv.vault.azure.net,"
    "image.repository=contoso.azurecr.io/signet,"
    "test.verifyImage=contoso.azurecr.io/net-monitor@sha256:" + "b" * 64
)


def walkthrough_values():
    """values-aks.yaml plus the flags examples/net-monitor/README.md passes."""
    flags = helm.parse_set_string(WALKTHROUGH_SET)
    return merge(AKS_VALUES, flags)


def test_walkthrough_set_flags_are_valid():
    readme = (ROOT / "examples" / "net-monitor" / "README.md").read_text()
    assert "-f examples/net-monitor/values-aks.yaml" in readme
    assert "--set azureWorkloadIdentity.clientId=$IDENTITY_CLIENT_ID" in readme
    assert '--set "registry.acrRegistries[0]=$ACR_NAME.azurecr.io"' in readme
    assert "--set azureKeyVault.url=https://$AKV_NAME.vault.azure.net" in readme
    # Every --set key of the README exists in the chart's values.
    import re
    with helm.Chart.load(str(CHART)) as chart:
        defaults = chart.values
    keys = re.findall(r"--set(?:-file)? \"?'?([A-Za-z][A-Za-z0-9.\[\]]*)=", readme)
    assert len(keys) >= 5, keys
    for key in keys:
        node = defaults
        for part in re.split(r"\.|\[\d+\]", key):
            if not part:
                continue
            assert isinstance(node, dict) and part in node, f"README sets {key}, unknown to values.yaml"
            node = node[part]
    assert "--set image.repository=$ACR_NAME.azurecr.io/signet" in readme
    assert "--set test.verifyImage=$IMAGE" in readme
    assert "helm test signet -n gatekeeper-system --logs" in readme
    # The certificate name the README creates is the one values-aks.yaml fetches.
    assert "CERT_NAME=wabbit-networks-io" in readme
    # The image the README builds is the tag the chart pulls by default (appVersion), built
    # with the plain Dockerfile and the commit for `signet --version`.
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert f"az acr build --registry $ACR_NAME --image signet:{app_version} \\\n  --build-arg SIGNET_GIT_COMMIT=$(git rev-parse HEAD) ." in readme
    assert "image.tag" not in readme
    # Digest pinning on, and the assignment insists on pinned images.
    assert AKS_VALUES["policy"]["mutation"]["enabled"] is True
    assert '"requireDigest": {"value": true}' in readme
    # The steps a new user needs: external data on the add-on, logs of every replica, how
    # a denied Deployment shows, Gatekeeper's cache.
    for needle in ["providers.externaldata.gatekeeper.sh", "--enable-external-data", "--prefix",
                   "describe replicaset", "FailedCreate", "response-cache TTL"]:
        assert needle in readme, needle
    assert "logs deployment/signet" not in readme
    values = walkthrough_values()
    objects, _ = render(values)
    validate_k8s(objects)
    config, _ = config_of(objects)
    assert config["azure"]["acrRegistries"] == ["contoso.azurecr.io"]
    assert config["azure"]["clientId"] == "11111111-2222-3333-4444-555555555555"
    assert config["azure"]["keyVault"]["url"] == "https://contoso-kv.vault.azure.net"
    dep, c = container(objects)
    assert c["image"] == "contoso.azurecr.io/signet:" + yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert all_of(objects, "Assign"), "the walkthrough pins images"
    np = only(objects, "NetworkPolicy")
    assert np["spec"]["ingress"][0]["from"][0]["podSelector"] == {}


def test_azure_needs_workload_identity():
    for values, needle in [
        ({"registry": {"acrRegistries": ["x.azurecr.io"]}}, "azureWorkloadIdentity.enabled"),
        ({"azureKeyVault": {"url": "https://kv.vault.azure.net", "certificates": [{"name": "c", "store": "ca:c"}]}}, "azureWorkloadIdentity.enabled"),
        ({"azureWorkloadIdentity": {"enabled": True, "clientId": "11111111-2222-3333-4444-555555555555"},
          "azureKeyVault": {"url": "https://kv.vault.azure.net"}}, "certificates"),
    ]:
        try:
            render(values)
        except helm.HelmError as exc:
            assert needle in str(exc), exc
        else:
            raise AssertionError(f"rendered {values}")


def test_policy_objects():
    objects, _ = render({"policy": {"enabled": True, "mutation": {"enabled": True}}})
    template = only(objects, "ConstraintTemplate")
    source = yaml.safe_load((ROOT / "policy" / "template.yaml").read_text())
    labels = template["metadata"].pop("labels")
    del template["__source__"]
    assert labels["app.kubernetes.io/part-of"] == "signet"
    assert template == source, "chart's ConstraintTemplate differs from policy/template.yaml"
    constraint = only(objects, "SignetVerifiedImages")
    assert constraint["spec"]["parameters"] == {
        "provider": "signet", "requireDigest": False, "minimumLevel": "permissive", "excludedImages": [],
        "namespacedKeys": False,
    }
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
    # Mutation is on by default (admit what was verified, not what a tag names later); the
    # template and constraint only with policy.enabled.
    objects, _ = render()
    assert not all_of(objects, "ConstraintTemplate") and len(all_of(objects, "Assign")) == 7
    objects, _ = render({"policy": {"mutation": {"enabled": False}}})
    assert not all_of(objects, "Assign")


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
    expect_schema_rejection({"azureKeyVault": {"certificates": [{"name": "c", "store": "ca:c", "path": "x"}]}}, "path")


def test_schema_rejects_wrong_types():
    expect_schema_rejection({"replicaCount": "two"}, "replicaCount")
    expect_schema_rejection({"service": {"port": 70000}}, "port")
    expect_schema_rejection({"server": {"requestDeadline": "soon"}}, "requestDeadline")
    expect_schema_rejection({"policy": {"enforcementAction": "block"}}, "enforcementAction")
    expect_schema_rejection({"trustStore": {"ca": {"x": {"a.pem": "not a certificate"}}}}, "a.pem")
    expect_schema_rejection({"trustPolicy": {"version": "2.0", "trustPolicies": []}}, "version")
    # Only what signet's configuration parses: one unit, no Go-style compound durations.
    expect_schema_rejection({"cache": {"verifiedTTL": "1m30s"}}, "verifiedTTL")
    expect_schema_rejection({"registry": {"acrRegistries": ["https://x.azurecr.io"]}}, "acrRegistries")
    expect_schema_rejection({"azureKeyVault": {"url": "http://kv.example"}}, "url")
    expect_schema_rejection({"azureKeyVault": {"certificates": [{"name": "c", "store": "root:c"}]}}, "store")


def test_default_values_and_every_documented_key_pass_the_schema():
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(chart.values)
        chart.validate_schema(AKS_VALUES)


def test_helm_lint():
    report = helm.lint(str(CHART), strict=True, namespace=NAMESPACE, kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
    assert not problems, problems


def test_constraint_is_never_deleted_on_upgrade():
    values = {"policy": {"enabled": True}}
    # First install: the constraint's kind does not exist yet; a post-install hook, created
    # after Gatekeeper processed the template.
    objects, _ = render(values)
    annotations = only(objects, "SignetVerifiedImages")["metadata"]["annotations"]
    assert annotations["helm.sh/hook"] == "post-install"
    assert "helm.sh/hook-delete-policy" not in annotations
    # Upgrade: an ordinary release object, updated in place (no delete + create window);
    # the release annotations let Helm adopt the hook-created object.
    objects, _ = render(values, upgrade=True)
    constraint = only(objects, "SignetVerifiedImages")
    annotations = constraint["metadata"]["annotations"]
    assert not any(k.startswith("helm.sh/hook") for k in annotations), annotations
    assert annotations["meta.helm.sh/release-name"] == "signet"
    assert annotations["meta.helm.sh/release-namespace"] == NAMESPACE
    assert constraint["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "Helm"


def test_policy_parameters_follow_the_values():
    objects, _ = render({
        "provider": {"name": "signet-prod"},
        "policy": {"enabled": True, "requireDigest": True, "minimumLevel": "strict",
                   "excludedImages": ["myreg.azurecr.io*"]},
    })
    params = only(objects, "SignetVerifiedImages")["spec"]["parameters"]
    assert params == {"provider": "signet-prod", "requireDigest": True, "minimumLevel": "strict",
                      "namespacedKeys": False, "excludedImages": ["myreg.azurecr.io*"]}
    only(objects, "Provider", "signet-prod")
    # Every parameter the constraint sets is one the template declares.
    template = only(objects, "ConstraintTemplate")
    declared = template["spec"]["crd"]["spec"]["validation"]["openAPIV3Schema"]["properties"]
    assert set(params) <= set(declared), (params, declared)
    expect_schema_rejection({"policy": {"minimumLevel": "Audit"}}, "minimumLevel")
    objects, _ = render({"policy": {"enabled": True, "namespacedKeys": True}})
    assert only(objects, "SignetVerifiedImages")["spec"]["parameters"]["namespacedKeys"] is True


def test_timeouts_nest():
    # Defaults: requestDeadline + 500ms <= provider.timeout < the webhook timeouts.
    with helm.Chart.load(str(CHART)) as chart:
        v = chart.values
    deadline_ms = float(v["server"]["requestDeadline"].removesuffix("ms"))
    assert deadline_ms + 500 <= v["provider"]["timeout"] * 1000
    assert v["provider"]["timeout"] < v["gatekeeper"]["validatingWebhookTimeoutSeconds"]
    assert v["provider"]["timeout"] < v["gatekeeper"]["mutatingWebhookTimeoutSeconds"]
    objects, _ = render()
    for p in all_of(objects, "Provider"):
        assert p["spec"]["timeout"] == v["provider"]["timeout"]
    for values, needle in [
        ({"server": {"requestDeadline": "2s"}}, "server.requestDeadline (2s) must end at least 500ms before provider.timeout (2s)"),
        ({"server": {"requestDeadline": "1m"}, "provider": {"timeout": 30}}, "server.requestDeadline"),
        ({"provider": {"timeout": 3}}, "must be less than gatekeeper.validatingWebhookTimeoutSeconds"),
        ({"gatekeeper": {"mutatingWebhookTimeoutSeconds": 1}}, "mutatingWebhookFailurePolicy=Fail"),
    ]:
        try:
            render(values)
        except helm.HelmError as exc:
            assert needle in str(exc), exc
        else:
            raise AssertionError(f"rendered {values}")
    # Without the mutation, Gatekeeper's 1 s mutating default does not matter.
    render({"gatekeeper": {"mutatingWebhookTimeoutSeconds": 1}, "policy": {"mutation": {"enabled": False}}})
    render({"server": {"requestDeadline": "3500ms"}, "provider": {"timeout": 4},
            "gatekeeper": {"validatingWebhookTimeoutSeconds": 5, "mutatingWebhookTimeoutSeconds": 5}})
    # The documents say the same.
    for doc in [ROOT / "README.md", CHART / "README.md"]:
        text = doc.read_text()
        assert "requestDeadline + 500ms <= provider.timeout < " in text.replace("`", ""), doc


def test_missing_mutation_api_is_explained():
    # Against a cluster only (lookup and the API list): checked in the template's text.
    policy = (CHART / "templates" / "policy.yaml").read_text()
    assert '.Capabilities.APIVersions.Has "mutations.gatekeeper.sh/v1/Assign"' in policy
    assert "set policy.mutation.enabled=false and policy.requireDigest=true" in policy


def test_client_ca_missing_is_explained():
    # `lookup` answers only against a cluster; the check is in the template.
    helpers = (CHART / "templates" / "_helpers.tpl").read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace $ca.secretName' in helpers
    assert "install Signet in Gatekeeper's namespace" in helpers
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    assert '{{- include "signet.checkClientCA" . }}' in deployment


def test_startup_probe_covers_the_first_key_vault_fetch():
    objects, _ = render(AKS_VALUES)
    _, c = container(objects)
    probe = c["startupProbe"]
    assert probe["httpGet"] == {"path": "/healthz", "port": "metrics", "scheme": "HTTP"}
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 60
    assert "initialDelaySeconds" not in c["livenessProbe"]


def test_extra_env_and_volumes():
    values = {
        "extraEnv": [{"name": "HTTPS_PROXY", "value": "http://proxy.example:3128"}],
        "extraVolumes": [{"name": "pw", "secret": {"secretName": "registry-password"}}],
        "extraVolumeMounts": [{"name": "pw", "mountPath": "/etc/signet/registry-auth", "readOnly": True}],
    }
    objects, _ = render(values)
    validate_k8s(objects)
    dep, c = container(objects)
    assert {"name": "HTTPS_PROXY", "value": "http://proxy.example:3128"} in c["env"]
    assert {"name": "pw", "secret": {"secretName": "registry-password"}} in dep["spec"]["template"]["spec"]["volumes"]
    assert mounted_paths(objects)["/etc/signet/registry-auth"][0]["name"] == "pw"
    expect_schema_rejection({"extraVolumeMounts": [{"name": "pw"}]}, "mountPath")


def test_revocation_values_map_to_the_configuration():
    objects, _ = render({"revocation": {"enabled": False, "fetchTimeout": "2s", "maxCrlAge": "30m"}})
    config, _ = config_of(objects)
    assert config["revocation"] == {"enabled": False, "fetchTimeout": "2s", "maxCrlAge": "30m", "allow": [], "deny": []}
    objects, _ = render({"revocation": {"allow": ["crl.corp.example", "10.20.0.0/16"], "deny": ["*.internal.example"]}})
    config, _ = config_of(objects)
    assert config["revocation"]["allow"] == ["crl.corp.example", "10.20.0.0/16"]
    assert config["revocation"]["deny"] == ["*.internal.example"]
    expect_schema_rejection({"revocation": {"fetchTimeout": "soon"}}, "fetchTimeout")
    expect_schema_rejection({"revocation": {"ocsp": True}}, "ocsp")


def test_connection_limits_and_key_vault_options_map_to_the_configuration():
    objects, _ = render({"server": {"maxHandshakes": 32, "maxHandshakesPerPeer": 4, "handshakeTimeout": "1s", "maxConnections": 256}})
    config, _ = config_of(objects)
    assert config["limits"]["maxHandshakes"] == 32
    assert config["limits"]["maxHandshakesPerPeer"] == 4
    assert config["limits"]["handshakeTimeout"] == "1s"
    assert config["limits"]["maxConnections"] == 256
    expect_schema_rejection({"server": {"maxHandshakes": 0}}, "maxHandshakes")
    values = merge(AKS_VALUES, {"azureKeyVault": {
        "url": "https://vault.local.azurestack.external",
        "certificates": [{"name": "signer", "versions": 2, "chainFromSecret": True, "store": "ca:signer"}],
    }})
    objects, _ = render(values)
    config, _ = config_of(objects)
    kv = config["azure"]["keyVault"]
    assert kv["url"] == "https://vault.local.azurestack.external"
    assert kv["certificates"] == [{"name": "signer", "versions": 2, "chainFromSecret": True, "store": "ca:signer"}]
    expect_schema_rejection(merge(AKS_VALUES, {"azureKeyVault": {"url": "http://vault.example"}}), "url")


MULTI_ARCH_DCT_VALUES = {
    "multiArch": {"statements": {"default": {"mode": "platforms", "platforms": ["linux/amd64", "linux/arm64"]}}},
    "dct": {
        "migrationUntil": "2028-03-31T00:00:00Z",
        "repositories": [{"scope": "myregistry.azurecr.io/team/*", "server": "https://myregistry.azurecr.io",
                          "rootKeys": ["ab" * 32]}],
    },
}


def test_multi_arch_and_dct_values_map_to_the_configuration():
    objects, _ = render()
    config, _ = config_of(objects)
    assert "multiArch" not in config and "dct" not in config
    objects, _ = render(MULTI_ARCH_DCT_VALUES)
    validate_k8s(objects)
    config, policy = config_of(objects)
    assert config["multiArch"] == MULTI_ARCH_DCT_VALUES["multiArch"]
    # The trust policy stays notation's document: nothing of multiArch goes into it.
    assert "multiArch" not in json.dumps(policy)
    assert config["dct"] == {
        "migrationUntil": "2028-03-31T00:00:00Z",
        "timeoutSeconds": 10,
        "repositories": [{"scope": "myregistry.azurecr.io/team/*", "server": "https://myregistry.azurecr.io",
                          "rootKeys": ["ab" * 32], "rootCertificates": []}],
    }
    expect_schema_rejection({"multiArch": {"statements": {"default": {"mode": "perPlatform"}}}}, "mode")
    expect_schema_rejection({"multiArch": {"statements": {"default": {"platforms": ["linux"]}}}}, "platforms")
    expect_schema_rejection({"dct": {"repositories": [{"scope": "a/b", "server": "http://notary"}]}}, "server")
    expect_schema_rejection({"dct": {"trustOnFirstUse": True}}, "trustOnFirstUse")


def test_network_policy_admits_only_gatekeeper_the_test_pod_and_the_scraper():
    objects, _ = render()
    validate_k8s(objects)
    np = only(objects, "NetworkPolicy")
    assert np["spec"]["policyTypes"] == ["Ingress"]
    dep, _ = container(objects)
    assert np["spec"]["podSelector"]["matchLabels"].items() <= dep["spec"]["template"]["metadata"]["labels"].items()
    https, metrics = np["spec"]["ingress"]
    assert https["ports"] == [{"port": "https", "protocol": "TCP"}]
    gatekeeper, test_pod = https["from"]
    assert gatekeeper["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "gatekeeper-system"}}
    assert gatekeeper["podSelector"] == {"matchLabels": {"gatekeeper.sh/system": "yes"}}
    pod = only(objects, "Pod")
    assert test_pod["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
    assert metrics["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics["from"] == [test_pod]
    scraper = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    objects, _ = render({"networkPolicy": {"metricsFrom": [scraper], "gatekeeperPodSelector": None}})
    validate_k8s(objects)
    np = only(objects, "NetworkPolicy")
    assert scraper in np["spec"]["ingress"][1]["from"]
    assert np["spec"]["ingress"][0]["from"][0]["podSelector"] == {}
    objects, _ = render({"networkPolicy": {"enabled": False}})
    assert not all_of(objects, "NetworkPolicy")


def test_helm_test_checks_readyz_and_verifies_the_configured_image():
    image = "myregistry.azurecr.io/net-monitor@sha256:" + "a" * 64
    objects, _ = render({"test": {"verifyImage": image}})
    validate_k8s(objects)
    pod = only(objects, "Pod")
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    # Not one of Signet's pods: neither the Service, the Deployment nor the PDB selects it.
    service = only(objects, "Service")
    assert not service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    _, manifests = render({"test": {"verifyImage": image}})
    text = next(t for p, t in manifests.items() if p.endswith("test-verify.yaml"))
    labels = text.split("labels:", 1)[1].split("annotations:", 1)[0].split()
    keys = [w for w in labels if w.endswith(":")]
    assert len(keys) == len(set(keys)), f"duplicate label keys: {keys}"
    (c,) = pod["spec"]["containers"]
    script = c["args"][0]
    assert "http://signet:9090/readyz" in script
    assert "https://signet.gatekeeper-system:8443/v1/verify" in script
    assert "--cert /etc/signet-test/client/tls.crt --key /etc/signet-test/client/tls.key" in script
    assert '"isSuccess": ?true' in script
    assert {"name": "VERIFY_IMAGE", "value": image} in c["env"]
    volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert volumes["ca"]["configMap"]["name"] == "signet-ca"
    assert volumes["client"]["secret"]["secretName"] == "gatekeeper-webhook-server-cert"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    # Without Gatekeeper's client CA, no client certificate is presented.
    objects, _ = render({"gatekeeper": {"clientCA": {"enabled": False}}})
    pod = only(objects, "Pod")
    assert "--cert" not in pod["spec"]["containers"][0]["args"][0]
    assert [v["name"] for v in pod["spec"]["volumes"]] == ["ca"]


def test_notes_warn_about_trust_only_without_any_source():
    _, manifests = render()
    assert "no trust store certificate was given" in notes(manifests)
    _, manifests = render(AKS_VALUES)
    text = notes(manifests)
    assert "no trust store certificate was given" not in text
    assert "Trust anchors come from Key Vault https://myvault.vault.azure.net" in text
    assert "--prefix" in text and "-l app.kubernetes.io/instance=signet" in text
    assert "mutatingWebhookFailurePolicy=Fail" in text
    # A ServiceMonitor behind the NetworkPolicy needs a scraper peer.
    _, manifests = render({"metrics": {"serviceMonitor": {"enabled": True}}})
    assert "admits no scraper" in notes(manifests)
    _, manifests = render({"metrics": {"serviceMonitor": {"enabled": True}},
                           "networkPolicy": {"metricsFrom": [{"namespaceSelector": {}}]}})
    assert "admits no scraper" not in notes(manifests)


def test_every_value_has_a_description():
    schema = json.loads((CHART / "values.schema.json").read_text())
    missing = []

    def walk(node, path):
        for key, sub in node.get("properties", {}).items():
            where = f"{path}.{key}" if path else key
            if not sub.get("description"):
                missing.append(where)
            walk(sub, where)
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{path}[{key}]")

    walk(schema, "")
    assert not missing, missing


def test_generated_ca_and_the_gitops_paths():
    # Without cluster access every render generates a new CA (consistent within the render);
    # install/upgrade reuse the secret through lookup. GitOps: cert-manager or a pre-made
    # secret, whose renders are identical.
    template = (CHART / "templates" / "tls-provider.yaml").read_text()
    assert 'lookup "v1" "Secret" .Release.Namespace $secretName' in template
    a, _ = render()
    b, _ = render()
    assert only(a, "Secret")["data"]["ca.crt"] != only(b, "Secret")["data"]["ca.crt"]
    for values in [
        {"tls": {"existingSecret": "signet-tls-premade", "caBundle": TEST_CA}},
        {"certManager": {"enabled": True, "issuerRef": {"name": "signet-ca"}}, "tls": {"caBundle": TEST_CA}},
    ]:
        a, _ = render(values)
        b, _ = render(values)
        strip = lambda objs: [{k: v for k, v in o.items() if k != "__source__"} for o in objs]
        assert strip(a) == strip(b), values
        assert not all_of(a, "Secret")
        assert only(a, "Deployment")["spec"]["template"]["spec"]["volumes"][3]["secret"]["secretName"] in ("signet-tls-premade", "signet-tls")
    readme = (CHART / "README.md").read_text()
    assert "GitOps" in readme and "existingSecret" in readme and "certManager" in readme


def team_policy(name):
    return {"version": "1.0", "trustPolicies": [{
        "name": name, "registryScopes": [f"myreg.azurecr.io/{name}/app"],
        "signatureVerification": {"level": "strict"}, "trustStores": [f"ca:{name}"],
        "trustedIdentities": ["*"]}]}


def namespaces_values():
    return {
        "policy": {"enabled": True, "namespacedKeys": True},
        "namespaces": {
            "team-a": {"trustPolicy": team_policy("team-a"),
                       "trustStore": {"ca": {"team-a": {"root.pem": TEST_CA}},
                                      "tsa": {"tsa": {"tsa.pem": TEST_CA}}}},
            "team-b": {"trustPolicy": team_policy("team-b")},
        },
    }


def test_namespaced_trust_is_mounted_as_directories_and_configured():
    objects, _ = render(namespaces_values())
    validate_k8s(objects)
    config, _ = config_of(objects)
    assert config["namespaces"] == {
        ns: {"trust": {"policyFile": f"/etc/signet/namespaces/{ns}/policy/trustpolicy.json",
                       "storeRoot": f"/etc/signet/namespaces/{ns}/truststore"}}
        for ns in ["team-a", "team-b"]
    }, config["namespaces"]
    mounts = mounted_paths(objects)
    for ns in ["team-a", "team-b"]:
        trust = config["namespaces"][ns]["trust"]
        policy_dir = str(pathlib.PurePosixPath(trust["policyFile"]).parent)
        for path in [policy_dir, trust["storeRoot"]]:
            volume, mount = mounts[path]
            # Directories, never subPath: a changed ConfigMap reaches the pod and is reloaded.
            assert "subPath" not in mount and mount["readOnly"] is True, mount
        policy_cm = only(objects, "ConfigMap", f"signet-ns-{ns}-policy")
        assert mounts[policy_dir][0]["configMap"]["name"] == policy_cm["metadata"]["name"]
        assert json.loads(policy_cm["data"]["trustpolicy.json"]) == team_policy(ns)
    store_volume, _ = mounts["/etc/signet/namespaces/team-a/truststore"]
    store_cm = only(objects, "ConfigMap", "signet-ns-team-a-truststore")
    assert store_volume["configMap"]["name"] == "signet-ns-team-a-truststore"
    assert sorted((i["key"], i["path"]) for i in store_volume["configMap"]["items"]) == [
        ("ca.team-a.root.pem", "x509/ca/team-a/root.pem"),
        ("tsa.tsa.tsa.pem", "x509/tsa/tsa/tsa.pem"),
    ]
    assert store_cm["data"]["ca.team-a.root.pem"].startswith("-----BEGIN CERTIFICATE-----")
    # A namespace without stores still gets its (empty) store directory.
    assert not only(objects, "ConfigMap", "signet-ns-team-b-truststore").get("data")
    # Without namespaces nothing of the kind is rendered.
    objects, _ = render()
    config, _ = config_of(objects)
    assert "namespaces" not in config
    assert not [o for o in objects if "-ns-" in o["metadata"]["name"]]


def test_namespaced_trust_values_are_checked_by_the_schema():
    expect_schema_rejection({"namespaces": {"Team_A": {"trustPolicy": team_policy("a")}}}, "Team_A")
    expect_schema_rejection({"namespaces": {"team-a": {"trustStore": {}}}}, "trustPolicy")
    expect_schema_rejection({"namespaces": {"team-a": {"trustPolicy": team_policy("a"), "keyVault": {}}}},
                            "keyVault")
    expect_schema_rejection(
        {"namespaces": {"team-a": {"trustPolicy": team_policy("a"),
                                   "trustStore": {"ca": {"a": {"root.pem": "not a certificate"}}}}}},
        "BEGIN CERTIFICATE")
    many = {f"ns{i}": {"trustPolicy": team_policy("a")} for i in range(65)}
    expect_schema_rejection({"namespaces": many}, "namespaces")
    expect_schema_rejection({"policy": {"namespacedKeys": "yes"}}, "namespacedKeys")


CONFIG_SCENARIOS = {
    "default": lambda: {},
    "aks": lambda: AKS_VALUES,
    "walkthrough": walkthrough_values,
    "revocation-off": lambda: {"revocation": {"enabled": False}},
    "limits-and-key-vault-options": lambda: merge(AKS_VALUES, {
        "server": {"maxHandshakes": 32, "handshakeTimeout": "1s"},
        "revocation": {"allow": ["crl.corp.example"], "deny": ["*.internal.example"]},
        "azureKeyVault": {"url": "https://kv.vault.azure.net", "certificates": [
            {"name": "signer", "versions": 2, "chainFromSecret": True, "store": "ca:signer"}]},
    }),
    "multi-arch-dct": lambda: MULTI_ARCH_DCT_VALUES,
    "cert-manager-no-client-ca": lambda: {
        "certManager": {"enabled": True, "issuerRef": {"name": "signet-ca"}},
        "tls": {"caBundle": TEST_CA},
        "gatekeeper": {"clientCA": {"enabled": False}},
        "registry": {"dockerConfigSecret": "pull", "caCertificates": TEST_CA, "plainHttp": ["registry.local:5000"]},
    },
    "namespaces": namespaces_values,
}


def write_configs(directory):
    """Writes each scenario's rendered config.yaml to DIRECTORY/NAME.yaml (for tests/tests/chart.rs)."""
    out = pathlib.Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    for name, values in CONFIG_SCENARIOS.items():
        objects, _ = render(values())
        cm = only(objects, "ConfigMap", "signet-config")
        (out / f"{name}.yaml").write_text(cm["data"]["config.yaml"])
        print(f"wrote {out / name}.yaml")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--write-configs":
        write_configs(sys.argv[2])
        return 0
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
