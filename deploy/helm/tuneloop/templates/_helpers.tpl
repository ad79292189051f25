{{/* Names, labels and the pod pieces the API, the worker and the migration Job share. */}}
{{- define "tuneloop.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "tuneloop.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "tuneloop.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "tuneloop.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "tuneloop.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tuneloop.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tuneloop.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "tuneloop.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "tuneloop.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "tuneloop.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "tuneloop.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The environment every tuneloop container gets: the ConfigMap, then the Secret's keys. */}}
{{- define "tuneloop.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "tuneloop.fullname" . }}
env:
  - name: DATABASE_URL
    valueFrom:
      secretKeyRef: {name: {{ .Values.existingSecret | quote }}, key: {{ .Values.secretKeys.databaseUrl | quote }}}
  - name: REDIS_URL
    valueFrom:
      secretKeyRef: {name: {{ .Values.existingSecret | quote }}, key: {{ .Values.secretKeys.redisUrl | quote }}, optional: true}
  - name: OPENAI_API_KEY
    valueFrom:
      secretKeyRef: {name: {{ .Values.existingSecret | quote }}, key: {{ .Values.secretKeys.openaiApiKey | quote }}, optional: true}
  - name: TUNELOOP_API__JWT_SECRET
    valueFrom:
      secretKeyRef: {name: {{ .Values.existingSecret | quote }}, key: {{ .Values.secretKeys.jwtSecret | quote }}, optional: true}
{{- end }}

{{- define "tuneloop.volumeMounts" -}}
volumeMounts:
  - {name: workspace, mountPath: /var/lib/tuneloop}
  - {name: tmp, mountPath: /tmp}
{{- end }}

{{- define "tuneloop.volumes" -}}
volumes:
  - name: workspace
    {{- if .Values.persistence.existingClaim }}
    persistentVolumeClaim:
      claimName: {{ .Values.persistence.existingClaim }}
    {{- else }}
    emptyDir: {}
    {{- end }}
  - name: tmp
    emptyDir: {}
{{- end }}
