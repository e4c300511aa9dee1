{{/* Object names: <release>-<chart>, or the release name when it already contains the chart. */}}
{{- define "dli-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 52 | trimSuffix "-" }}
{{- end }}

{{- define "dli-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The labels of deploy/base (name, part-of) plus Helm's usual ones. */}}
{{- define "dli-operator.labels" -}}
app.kubernetes.io/name: {{ include "dli-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: dli-operator
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "dli-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dli-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dli-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dli-operator.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dli-operator.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the default credentials (envFrom), or nothing with mode none. */}}
{{- define "dli-operator.credentialsSecret" -}}
{{- if or .Values.emulator.enabled (eq .Values.credentials.mode "values") }}
{{- printf "%s-credentials" (include "dli-operator.fullname" .) }}
{{- else if eq .Values.credentials.mode "secret" }}
{{- .Values.credentials.existingSecret }}
{{- end }}
{{- end }}

{{- define "dli-operator.emulatorName" -}}
{{- printf "%s-emulator" (include "dli-operator.fullname" .) }}
{{- end }}
