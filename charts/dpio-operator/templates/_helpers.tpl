{{/* Names and labels, as `helm create` spells them. */}}

{{- define "dpio-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dpio-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "dpio-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dpio-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dpio-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dpio-operator.labels" -}}
helm.sh/chart: {{ include "dpio-operator.chart" . }}
{{ include "dpio-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dpio-operator
{{- end }}

{{- define "dpio-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dpio-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "dpio-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secrets the operator may read: the default vCenter Secret and the extra ones. */}}
{{- define "dpio-operator.secretNames" -}}
{{- prepend .Values.vcenter.extraSecretNames .Values.vcenter.secretName | uniq | toJson }}
{{- end }}

{{/* The leader-election Lease: leaderElection.leaseName, or <fullname>-leader. */}}
{{- define "dpio-operator.leaseName" -}}
{{- default (printf "%s-leader" (include "dpio-operator.fullname" .)) .Values.leaderElection.leaseName }}
{{- end }}

{{/* "true" when the metrics port is on and secure (HTTPS, TokenReview + SubjectAccessReview). */}}
{{- define "dpio-operator.secureMetrics" -}}
{{- if and .Values.metrics.enabled .Values.metrics.secure }}true{{- end }}
{{- end }}

{{/* Where the metrics Secret is mounted; DPIO_METRICS_CERT_FILE/KEY_FILE point into it. */}}
{{- define "dpio-operator.metricsTLSDir" -}}
/etc/dpio/metrics-tls
{{- end }}
