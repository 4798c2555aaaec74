{{/* Names */}}
{{- define "signet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "signet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "signet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "signet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "signet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "signet.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "signet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "signet.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: signet
{{- end -}}

{{- define "signet.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The server certificate secret. */}}
{{- define "signet.tlsSecretName" -}}
{{- default (printf "%s-tls" (include "signet.fullname" .)) .Values.tls.existingSecret -}}
{{- end -}}

{{/* DNS names the server certificate is valid for. */}}
{{- define "signet.dnsNames" -}}
{{- $fullname := include "signet.fullname" . -}}
{{- $ns := .Release.Namespace -}}
{{- list $fullname (printf "%s.%s" $fullname $ns) (printf "%s.%s.svc" $fullname $ns) (printf "%s.%s.svc.cluster.local" $fullname $ns) | toJson -}}
{{- end -}}

{{/*
The service configuration read by `signet serve --config /etc/signet/config.yaml`, in exactly
the schema of crates/signet/src/config.rs (unknown keys are fatal there). Every key is here,
in one place; tests/tests/chart.rs validates the rendered file with signet's own validator.
Values keep their user-facing names (cache.verifiedTTL → cache.successTTL, ...).
*/}}
{{- define "signet.config" -}}
{{- $kv := .Values.azureKeyVault -}}
{{- $acr := .Values.registry.acrRegistries -}}
{{- $wi := .Values.azureWorkloadIdentity -}}
{{- if and (or $acr $kv.url) (not $wi.enabled) -}}
{{- fail "registry.acrRegistries and azureKeyVault sign in to Azure with Workload Identity: set azureWorkloadIdentity.enabled=true and azureWorkloadIdentity.clientId" -}}
{{- end -}}
{{- if and $kv.url (not $kv.certificates) -}}
{{- fail "azureKeyVault.url needs azureKeyVault.certificates: [{name, store}]" -}}
{{- end -}}
listen: "0.0.0.0:{{ .Values.service.port }}"
metricsListen: "0.0.0.0:{{ .Values.service.metricsPort }}"
tls:
  certFile: /etc/signet/tls/tls.crt
  keyFile: /etc/signet/tls/tls.key
  {{- if .Values.gatekeeper.clientCA.enabled }}
  clientCAFile: /etc/signet/client-ca/ca.crt
  {{- else }}
  insecureNoClientAuth: true
  {{- end }}
trust:
  policyFile: /etc/signet/trustpolicy.json
  storeRoot: /etc/signet/truststore
registry:
  {{- if .Values.registry.dockerConfigSecret }}
  dockerConfig: /etc/signet/docker/config.json
  {{- end }}
  caFiles: {{ if .Values.registry.caCertificates }}["/etc/signet/registry-ca/ca.crt"]{{ else }}[]{{ end }}
  plainHttp: {{ .Values.registry.plainHttp | toJson }}
limits:
  requestDeadline: {{ .Values.server.requestDeadline | quote }}
cache:
  successTTL: {{ .Values.cache.verifiedTTL | quote }}
  failureTTL: {{ .Values.cache.unverifiedTTL | quote }}
  tagTTL: {{ .Values.cache.tagTTL | quote }}
admission:
  excludeNamespaces: {{ .Values.admission.excludedNamespaces | toJson }}
  excludeImages: {{ .Values.admission.excludedImages | toJson }}
log:
  level: {{ .Values.server.logLevel | quote }}
{{- if or $acr $kv.url }}
azure:
  workloadIdentity: true
  clientId: {{ $wi.clientId | quote }}
  {{- with $wi.tenantId }}
  tenantId: {{ . | quote }}
  {{- end }}
  acrRegistries: {{ $acr | toJson }}
  {{- if $kv.url }}
  keyVault:
    url: {{ $kv.url | quote }}
    refreshInterval: {{ $kv.refreshInterval | quote }}
    certificates:
      {{- range $kv.certificates }}
      - name: {{ .name | quote }}
        {{- with .version }}
        version: {{ . | quote }}
        {{- end }}
        store: {{ .store | quote }}
      {{- end }}
  {{- end }}
{{- end }}
{{- end -}}
