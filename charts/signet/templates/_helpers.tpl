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
the schema of crates/signet/src/config/mod.rs (unknown keys are fatal there). Every key is here,
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
{{- with .Values.namespaces }}
namespaces:
  {{- range $ns, $_ := . }}
  {{ $ns }}:
    trust:
      policyFile: /etc/signet/namespaces/{{ $ns }}/policy/trustpolicy.json
      storeRoot: /etc/signet/namespaces/{{ $ns }}/truststore
  {{- end }}
{{- end }}
registry:
  {{- if .Values.registry.dockerConfigSecret }}
  dockerConfig: /etc/signet/docker/config.json
  {{- end }}
  caFiles: {{ if .Values.registry.caCertificates }}["/etc/signet/registry-ca/ca.crt"]{{ else }}[]{{ end }}
  plainHttp: {{ .Values.registry.plainHttp | toJson }}
limits:
  requestDeadline: {{ .Values.server.requestDeadline | quote }}
  maxHandshakes: {{ .Values.server.maxHandshakes }}
  maxHandshakesPerPeer: {{ .Values.server.maxHandshakesPerPeer }}
  handshakeTimeout: {{ .Values.server.handshakeTimeout | quote }}
  maxConnections: {{ .Values.server.maxConnections }}
cache:
  successTTL: {{ .Values.cache.verifiedTTL | quote }}
  failureTTL: {{ .Values.cache.unverifiedTTL | quote }}
  tagTTL: {{ .Values.cache.tagTTL | quote }}
admission:
  excludeNamespaces: {{ .Values.admission.excludedNamespaces | toJson }}
  excludeImages: {{ .Values.admission.excludedImages | toJson }}
revocation:
  enabled: {{ .Values.revocation.enabled }}
  fetchTimeout: {{ .Values.revocation.fetchTimeout | quote }}
  maxCrlAge: {{ .Values.revocation.maxCrlAge | quote }}
  allow: {{ .Values.revocation.allow | default list | toJson }}
  deny: {{ .Values.revocation.deny | default list | toJson }}
log:
  level: {{ .Values.server.logLevel | quote }}
{{- with .Values.multiArch.statements }}
multiArch:
  statements: {{ . | toJson }}
{{- end }}
{{- with .Values.dct }}
{{- if .repositories }}
dct:
  {{- with .migrationUntil }}
  migrationUntil: {{ . | quote }}
  {{- end }}
  timeoutSeconds: {{ .timeoutSeconds | default 10 | int }}
  repositories:
    {{- range .repositories }}
    - scope: {{ .scope | quote }}
      server: {{ .server | quote }}
      rootKeys: {{ .rootKeys | default list | toJson }}
      rootCertificates: {{ .rootCertificates | default list | toJson }}
      {{- with .serverCa }}
      serverCa: {{ . | quote }}
      {{- end }}
    {{- end }}
{{- end }}
{{- end }}
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
        {{- with .versions }}
        versions: {{ . }}
        {{- end }}
        {{- if .chainFromSecret }}
        chainFromSecret: true
        {{- end }}
        store: {{ .store | quote }}
      {{- end }}
  {{- end }}
{{- end }}
{{- end -}}

{{/* A duration of the values (500ms, 2s, 1m, 1h) in milliseconds. */}}
{{- define "signet.durationMs" -}}
{{- $d := toString . -}}
{{- if hasSuffix "ms" $d -}}{{ trimSuffix "ms" $d | float64 }}
{{- else if hasSuffix "s" $d -}}{{ mulf (trimSuffix "s" $d | float64) 1000 }}
{{- else if hasSuffix "m" $d -}}{{ mulf (trimSuffix "m" $d | float64) 60000 }}
{{- else if hasSuffix "h" $d -}}{{ mulf (trimSuffix "h" $d | float64) 3600000 }}
{{- else -}}{{ fail (printf "invalid duration %q: a number and one unit of ms, s, m, h" $d) }}
{{- end -}}
{{- end -}}

{{/*
The timeouts must nest, or a timeout further out answers first: Gatekeeper's webhooks fail
open by default, so a webhook that gives up before the Provider admits unchecked.
  server.requestDeadline + 500ms <= provider.timeout < gatekeeper.*WebhookTimeoutSeconds
*/}}
{{- define "signet.checkTimeouts" -}}
{{- $deadline := include "signet.durationMs" .Values.server.requestDeadline | float64 -}}
{{- $provider := mulf .Values.provider.timeout 1000 -}}
{{- if gt (addf $deadline 500) $provider -}}
{{- fail (printf "server.requestDeadline (%s) must end at least 500ms before provider.timeout (%vs), so that Signet's answer (with TIMEOUT for unfinished images) reaches Gatekeeper before it gives up" .Values.server.requestDeadline .Values.provider.timeout) -}}
{{- end -}}
{{- if ge (int .Values.provider.timeout) (int .Values.gatekeeper.validatingWebhookTimeoutSeconds) -}}
{{- fail (printf "provider.timeout (%vs) must be less than gatekeeper.validatingWebhookTimeoutSeconds (%vs): otherwise the API server stops waiting for Gatekeeper first, and Gatekeeper's webhook (failurePolicy Ignore by default) admits the pod unchecked" .Values.provider.timeout .Values.gatekeeper.validatingWebhookTimeoutSeconds) -}}
{{- end -}}
{{- if and .Values.policy.mutation.enabled (ge (int .Values.provider.timeout) (int .Values.gatekeeper.mutatingWebhookTimeoutSeconds)) -}}
{{- fail (printf "provider.timeout (%vs) must be less than gatekeeper.mutatingWebhookTimeoutSeconds (%vs) for the digest-pinning mutation: install Gatekeeper with --set mutatingWebhookTimeoutSeconds=3 --set mutatingWebhookFailurePolicy=Fail (its default of 1 s fails open) and set that value here, or turn policy.mutation.enabled off" .Values.provider.timeout .Values.gatekeeper.mutatingWebhookTimeoutSeconds) -}}
{{- end -}}
{{- end -}}

{{/*
Gatekeeper's client CA: at `helm install`/`upgrade` against a cluster (lookup answers), a
missing secret stops the release with what to do; `helm template` cannot look and renders.
*/}}
{{- define "signet.checkClientCA" -}}
{{- $ca := .Values.gatekeeper.clientCA -}}
{{- if and $ca.enabled (lookup "v1" "Namespace" "" .Release.Namespace) -}}
{{- $secret := lookup "v1" "Secret" .Release.Namespace $ca.secretName -}}
{{- if not (dig "data" $ca.key "" $secret) -}}
{{- fail (printf "gatekeeper.clientCA: secret %s/%s with key %s not found. Signet trusts Gatekeeper's client certificate through that secret: install Signet in Gatekeeper's namespace (--namespace gatekeeper-system), or point gatekeeper.clientCA.secretName/key at the secret holding Gatekeeper's CA; gatekeeper.clientCA.enabled=false accepts any client (lab use only)" .Release.Namespace $ca.secretName $ca.key) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels of the `helm test` pod (the NetworkPolicy admits it). */}}
{{- define "signet.testSelectorLabels" -}}
app.kubernetes.io/name: {{ include "signet.name" . }}-test
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
