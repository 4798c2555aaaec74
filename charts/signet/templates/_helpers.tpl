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
The service configuration read by `signet serve --config /etc/signet/config.yaml`.
All of the configuration's keys are here, in one place, so that they follow the server's
format.
*/}}
{{- define "signet.config" -}}
listen: "0.0.0.0:{{ .Values.service.port }}"
metricsListen: "0.0.0.0:{{ .Values.service.metricsPort }}"
logLevel: {{ .Values.server.logLevel | quote }}
tls:
  certFile: /etc/signet/tls/tls.crt
  keyFile: /etc/signet/tls/tls.key
  {{- if .Values.gatekeeper.clientCA.enabled }}
  clientCAFile: /etc/signet/client-ca/ca.crt
  {{- end }}
trustPolicy: /etc/signet/trustpolicy.json
trustStore: /etc/signet/truststore
{{- if .Values.registry.dockerConfigSecret }}
dockerConfig: /etc/signet/docker/config.json
{{- end }}
registryCAs:
{{- if .Values.registry.caCertificates }}
  - /etc/signet/registry-ca/ca.crt
{{- else }} []
{{- end }}
plainHttp: {{ .Values.registry.plainHttp | toJson }}
{{- if .Values.azureWorkloadIdentity.enabled }}
azure:
  workloadIdentity: true
  acrRegistries: {{ .Values.registry.acrRegistries | toJson }}
{{- end }}
requestDeadline: {{ .Values.server.requestDeadline | quote }}
cache:
  verifiedTTL: {{ .Values.cache.verifiedTTL | quote }}
  unverifiedTTL: {{ .Values.cache.unverifiedTTL | quote }}
  tagTTL: {{ .Values.cache.tagTTL | quote }}
admission:
  excludedNamespaces: {{ .Values.admission.excludedNamespaces | toJson }}
  excludedImages: {{ .Values.admission.excludedImages | toJson }}
{{- end -}}
