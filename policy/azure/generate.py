#!/usr/bin/env python3
"""Generates the Azure Policy definitions from the Gatekeeper ConstraintTemplate.

    python3 policy/azure/generate.py          # rewrite the two JSON files
    python3 policy/azure/generate.py --check  # exit 1 if they are out of date

signet-verified-images.json           templateInfo Base64Encoded: the template embedded
signet-verified-images.publicurl.json templateInfo PublicURL: the raw template on GitHub, at
                                      the release tag v<workspace version> (Cargo.toml), so an
                                      assignment keeps the template it was tested with

Standard library only. The test `tests/tests/azure_policy.rs` checks that the embedded
Base64 decodes to policy/template.yaml byte for byte and that both files are what this
script writes.
"""
import base64
import json
import pathlib
import re
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
TEMPLATE = HERE.parent / "template.yaml"


def release_version():
    """The workspace version ([workspace.package] version in Cargo.toml): the release tag."""
    cargo = (ROOT / "Cargo.toml").read_text()
    section = cargo.split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^version\s*=\s*"([^"]+)"', section, re.M).group(1)


def public_url():
    return f"https://raw.githubusercontent.com/signet-project/signet/v{release_version()}/policy/template.yaml"


def template_version():
    """metadata.gatekeeper.sh/version of the template: the definition's version too."""
    return re.search(r"metadata\.gatekeeper\.sh/version:\s*(\S+)", TEMPLATE.read_text()).group(1)


def definition(template_info):
    return {
        "properties": {
            "displayName": "Kubernetes cluster containers should only use images with a Notation signature verified by Signet",
            "policyType": "Custom",
            "mode": "Microsoft.Kubernetes.Data",
            "description": (
                "Every container, init container and ephemeral container image must carry a "
                "Notary Project (Notation) signature that the Signet external-data provider "
                "verifies under its trust policy. Requires Gatekeeper external data and the "
                "Signet Helm chart (Provider 'signet') in the cluster. Fails closed: an image "
                "Signet cannot verify, or cannot answer for, is non-compliant."
            ),
            "metadata": {"version": template_version(), "category": "Kubernetes"},
            "parameters": {
                "effect": {
                    "type": "String",
                    "metadata": {
                        "displayName": "Effect",
                        "description": "'Audit' flags non-compliant pods, 'Deny' blocks them, 'Disabled' turns the policy off (either case).",
                    },
                    "allowedValues": ["Audit", "audit", "Deny", "deny", "Disabled", "disabled"],
                    "defaultValue": "Deny",
                },
                "excludedNamespaces": {
                    "type": "Array",
                    "metadata": {
                        "displayName": "Namespace exclusions",
                        "description": "Namespaces excluded from evaluation. Keep the system namespaces: kube-system, gatekeeper-system, azure-arc, azure-extensions-usage-system.",
                    },
                    "defaultValue": [
                        "kube-system",
                        "gatekeeper-system",
                        "azure-arc",
                        "azure-extensions-usage-system",
                    ],
                },
                "namespaces": {
                    "type": "Array",
                    "metadata": {
                        "displayName": "Namespace inclusions",
                        "description": "Only these namespaces are evaluated; empty means all.",
                    },
                    "defaultValue": [],
                },
                "labelSelector": {
                    "type": "Object",
                    "metadata": {
                        "displayName": "Kubernetes label selector",
                        "description": "Label query to select Kubernetes resources for policy evaluation. An empty label selector matches all Kubernetes resources.",
                    },
                    "defaultValue": {},
                    "schema": {
                        "description": "A label selector is a label query over a set of resources. The result of matchLabels and matchExpressions are ANDed. An empty label selector matches all resources.",
                        "type": "object",
                        "properties": {
                            "matchLabels": {
                                "description": "matchLabels is a map of {key,value} pairs.",
                                "type": "object",
                                "additionalProperties": {"type": "string"},
                                "minProperties": 1,
                            },
                            "matchExpressions": {
                                "description": "matchExpressions is a list of values, a key, and an operator.",
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "properties": {
                                        "key": {"description": "key is the label key that the selector applies to.", "type": "string"},
                                        "operator": {
                                            "description": "operator represents a key's relationship to a set of values.",
                                            "type": "string",
                                            "enum": ["In", "NotIn", "Exists", "DoesNotExist"],
                                        },
                                        "values": {
                                            "description": "values is an array of string values. If the operator is In or NotIn, the values array must be non-empty. If the operator is Exists or DoesNotExist, the values array must be empty.",
                                            "type": "array",
                                            "items": {"type": "string"},
                                        },
                                    },
                                    "required": ["key", "operator"],
                                    "additionalProperties": False,
                                },
                                "minItems": 1,
                            },
                        },
                        "additionalProperties": False,
                    },
                },
                "excludedImages": {
                    "type": "Array",
                    "metadata": {
                        "displayName": "Image exclusions",
                        "description": "Images not sent to Signet. A pattern ending in '*' is a prefix match (e.g. 'mcr.microsoft.com/oss/*'); any other pattern must equal the image.",
                    },
                    "defaultValue": [],
                },
                "requireDigest": {
                    "type": "Boolean",
                    "metadata": {
                        "displayName": "Require images pinned to a digest",
                        "description": "Deny images not written with a digest (repo@sha256:...), so what runs is what Signet verified even if a tag moves. Use with Signet's tag-to-digest mutation, or when deploying by digest.",
                    },
                    "allowedValues": [True, False],
                    "defaultValue": False,
                },
                "minimumLevel": {
                    "type": "String",
                    "metadata": {
                        "displayName": "Minimum verification level",
                        "description": "Deny verified images whose trust-policy level ranks below this (strict > permissive > audit). Level skip is admitted; answers without a level (older Signet) are denied unless this is audit.",
                    },
                    "allowedValues": ["strict", "permissive", "audit"],
                    "defaultValue": "permissive",
                },
                "provider": {
                    "type": "String",
                    "metadata": {
                        "displayName": "Signet Provider name",
                        "description": "The Gatekeeper external-data Provider of Signet's verify endpoint (the chart's provider.name).",
                    },
                    "defaultValue": "signet",
                },
                "namespacedKeys": {
                    "type": "Boolean",
                    "metadata": {
                        "displayName": "Namespaced trust",
                        "description": "Send images as '[NAMESPACE]IMAGE' so Signet verifies each under its namespace's trust configuration (the cluster's when the namespace has none).",
                    },
                    "allowedValues": [True, False],
                    "defaultValue": False,
                },
            },
            "policyRule": {
                "if": {
                    "field": "type",
                    "in": [
                        "Microsoft.ContainerService/managedClusters",
                        "Microsoft.Kubernetes/connectedClusters",
                    ],
                },
                "then": {
                    "effect": "[parameters('effect')]",
                    "details": {
                        "templateInfo": template_info,
                        "apiGroups": [""],
                        "kinds": ["Pod"],
                        "excludedNamespaces": "[parameters('excludedNamespaces')]",
                        "namespaces": "[parameters('namespaces')]",
                        "labelSelector": "[parameters('labelSelector')]",
                        "values": {
                            "excludedImages": "[parameters('excludedImages')]",
                            "requireDigest": "[parameters('requireDigest')]",
                            "minimumLevel": "[parameters('minimumLevel')]",
                            "provider": "[parameters('provider')]",
                            "namespacedKeys": "[parameters('namespacedKeys')]",
                        },
                    },
                },
            },
        }
    }


def render():
    content = base64.b64encode(TEMPLATE.read_bytes()).decode("ascii")
    out = {}
    for name, info in (
        ("signet-verified-images.json", {"sourceType": "Base64Encoded", "content": content}),
        ("signet-verified-images.publicurl.json", {"sourceType": "PublicURL", "url": public_url()}),
    ):
        out[HERE / name] = json.dumps(definition(info), indent=2) + "\n"
    return out


def main(argv):
    check = "--check" in argv
    stale = []
    for path, text in render().items():
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if check:
            stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path.relative_to(HERE.parent.parent)}")
    if stale:
        print("out of date (run python3 policy/azure/generate.py): " + ", ".join(stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
