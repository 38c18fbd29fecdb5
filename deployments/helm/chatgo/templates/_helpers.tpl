{{/* Names and labels. */}}
{{- define "chatgo.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "chatgo.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "chatgo.labels" -}}
{{ include "chatgo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The Secret this chart makes for the values given inline. */}}
{{- define "chatgo.secretName" -}}
{{- include "chatgo.fullname" . }}-secrets
{{- end -}}

{{/* Where CHATGO_DATABASE_URL comes from: a secretKeyRef. Fails without a database. */}}
{{- define "chatgo.databaseSecretRef" -}}
{{- if .Values.cloudnativepg.enabled -}}
name: {{ include "chatgo.fullname" . }}-db-app
key: uri
{{- else if .Values.database.existingSecret -}}
name: {{ .Values.database.existingSecret }}
key: {{ .Values.database.existingSecretKey }}
{{- else if .Values.database.url -}}
name: {{ include "chatgo.secretName" . }}
key: database-url
{{- else -}}
{{- fail "set database.url, database.existingSecret or cloudnativepg.enabled: ChatGO needs a PostgreSQL (the embedded one cannot be shared by replicas)" -}}
{{- end -}}
{{- end -}}

{{- define "chatgo.signingKeySecret" -}}
{{- if .Values.signingKey.existingSecret -}}
{{- .Values.signingKey.existingSecret -}}
{{- else if .Values.signingKey.value -}}
{{- include "chatgo.secretName" . -}}
{{- else -}}
{{- fail "set signingKey.existingSecret or signingKey.value (make one with `chatgo generate-signing-key`)" -}}
{{- end -}}
{{- end -}}

{{- define "chatgo.host" -}}
{{- .Values.ingress.host | default .Values.serverName -}}
{{- end -}}
