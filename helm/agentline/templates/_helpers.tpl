{{/* Names and labels shared by every object of the chart. */}}
{{- define "agentline.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "agentline.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agentline
{{- end -}}

{{/* Labels of one service's objects: call with (dict "root" $ "name" "router"). */}}
{{- define "agentline.serviceLabels" -}}
{{ include "agentline.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "agentline.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "agentline.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* outbox-uploader and dlq-escalator keep SQLite on a volume: StatefulSets. */}}
{{- define "agentline.stateful" -}}
{{- if has . (list "outbox-uploader" "dlq-escalator") -}}true{{- end -}}
{{- end -}}

{{/* The service's config file (TOML), from services.<name>.config. */}}
{{- define "agentline.configFile" -}}
# {{ .name }}: options as in `{{ .name }} --help` (flags without the leading --).
{{- range $key, $value := .svc.config }}
{{ $key }} = {{ $value | toJson }}
{{- end }}
{{- end -}}

{{/* Kafka connection and the options every service shares, as environment variables. */}}
{{- define "agentline.env" -}}
- name: AGENTLINE_BOOTSTRAP_SERVERS
  value: {{ .Values.kafka.bootstrapServers | quote }}
- name: AGENTLINE_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: AGENTLINE_STATE_DIR
  value: /data
- name: AGENTLINE_HTTP_PORT
  value: "9400"
# Services bind loopback by default; in a pod the kubelet and Prometheus reach them from outside.
- name: AGENTLINE_HTTP_HOST
  value: "0.0.0.0"
- name: AGENTLINE_LOG_LEVEL
  value: {{ .Values.defaults.logLevel | quote }}
- name: AGENTLINE_MAX_IN_FLIGHT
  value: {{ .Values.defaults.maxInFlight | quote }}
- name: AGENTLINE_SHUTDOWN_GRACE_MS
  value: {{ mul .Values.defaults.shutdownGraceSeconds 1000 | quote }}
- name: AGENTLINE_CONFIG
  value: /etc/agentline/config.toml
{{- range $key, $value := .Values.kafka.properties }}
- name: {{ printf "AGENTLINE_KAFKA_%s" ($key | replace "." "_" | upper) }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- if and .Values.kafka.tls.enabled .Values.kafka.sasl.enabled }}
- name: AGENTLINE_KAFKA_SECURITY_PROTOCOL
  value: SASL_SSL
{{- else if .Values.kafka.tls.enabled }}
- name: AGENTLINE_KAFKA_SECURITY_PROTOCOL
  value: SSL
{{- else if .Values.kafka.sasl.enabled }}
- name: AGENTLINE_KAFKA_SECURITY_PROTOCOL
  value: SASL_PLAINTEXT
{{- end }}
{{- if .Values.kafka.tls.enabled }}
- name: AGENTLINE_KAFKA_SSL_CA_LOCATION
  value: /etc/agentline/kafka-tls/{{ .Values.kafka.tls.caKey }}
{{- if .Values.kafka.tls.certKey }}
- name: AGENTLINE_KAFKA_SSL_CERTIFICATE_LOCATION
  value: /etc/agentline/kafka-tls/{{ .Values.kafka.tls.certKey }}
- name: AGENTLINE_KAFKA_SSL_KEY_LOCATION
  value: /etc/agentline/kafka-tls/{{ .Values.kafka.tls.keyKey }}
{{- end }}
{{- end }}
{{- if .Values.kafka.sasl.enabled }}
- name: AGENTLINE_KAFKA_SASL_MECHANISM
  value: {{ .Values.kafka.sasl.mechanism | quote }}
- name: AGENTLINE_KAFKA_SASL_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "kafka.sasl.existingSecret is required when SASL is enabled" .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.usernameKey }}
- name: AGENTLINE_KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.passwordKey }}
{{- end }}
{{- end -}}

{{- define "agentline.tlsVolume" -}}
{{- if .Values.kafka.tls.enabled -}}
- name: kafka-tls
  secret:
    secretName: {{ required "kafka.tls.existingSecret is required when TLS is enabled" .Values.kafka.tls.existingSecret }}
{{- end }}
{{- end -}}

{{- define "agentline.tlsMount" -}}
{{- if .Values.kafka.tls.enabled -}}
- name: kafka-tls
  mountPath: /etc/agentline/kafka-tls
  readOnly: true
{{- end }}
{{- end -}}

{{/* The Secret holding the API token: the user's, or the one the chart makes (secret.yaml). */}}
{{- define "agentline.apiTokenSecret" -}}
{{- .Values.gateway.apiToken.existingSecret | default (printf "%s-api-token" (include "agentline.fullname" .)) -}}
{{- end }}

{{/* The API token for the gateway and dlq-escalator's admin routes, or --insecure-no-auth. */}}
{{- define "agentline.apiTokenEnv" -}}
{{- if .Values.gateway.apiToken.insecureNoAuth }}
- name: AGENTLINE_INSECURE_NO_AUTH
  value: "true"
{{- else }}
- name: AGENTLINE_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "agentline.apiTokenSecret" . }}
      key: {{ if .Values.gateway.apiToken.existingSecret }}{{ .Values.gateway.apiToken.key }}{{ else }}token{{ end }}
{{- end }}
{{- end }}
