{{- define "socketcluster.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "socketcluster.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "socketcluster.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* Values that cannot work stop the rendering with a message. */}}
{{- define "socketcluster.validate" -}}
{{- $v := .Values -}}
{{- if not (or (kindIs "float64" $v.replicaCount) (kindIs "int64" $v.replicaCount) (kindIs "int" $v.replicaCount)) -}}
{{- fail (printf "replicaCount must be a number, not %v" $v.replicaCount) -}}
{{- end -}}
{{- if lt (int $v.replicaCount) 1 -}}
{{- fail (printf "replicaCount is %v: run at least 1 replica" $v.replicaCount) -}}
{{- end -}}
{{- if not (regexMatch "^(memory|redis://.+|rediss://.+|nats://.+)$" (toString $v.broker.url)) -}}
{{- fail (printf "broker.url %q: use memory, redis://host:port, rediss://host:port or nats://host:port" (toString $v.broker.url)) -}}
{{- end -}}
{{- if and (gt (int $v.replicaCount) 1) (eq (toString $v.broker.url) "memory") -}}
{{- fail (printf "replicaCount is %v with broker.url memory: replicas would not share channels; set broker.url to a redis:// or nats:// URL" $v.replicaCount) -}}
{{- end -}}
{{- if and (ne (toString $v.broker.url) "memory") (not $v.auth.key) (not $v.auth.existingSecret) -}}
{{- fail "a broker.url other than memory needs auth.key or auth.existingSecret: with a random key per replica, clients lose their login when they reconnect to another replica" -}}
{{- end -}}
{{- range $name, $port := dict "port" $v.port "metrics.port" $v.metrics.port "admin.port" $v.admin.port "service.port" $v.service.port -}}
{{- if or (lt (int $port) 1) (gt (int $port) 65535) -}}
{{- fail (printf "%s is %v: use a TCP port between 1 and 65535" $name $port) -}}
{{- end -}}
{{- end -}}
{{- if or (eq (int $v.port) (int $v.metrics.port)) (and $v.admin.enabled (or (eq (int $v.admin.port) (int $v.port)) (eq (int $v.admin.port) (int $v.metrics.port)))) -}}
{{- fail "port, metrics.port and admin.port must differ" -}}
{{- end -}}
{{- if and $v.admin.enabled (not $v.admin.password) (not $v.admin.existingSecret) -}}
{{- fail "admin.enabled needs admin.password or admin.existingSecret" -}}
{{- end -}}
{{- range $k := list "preStopSeconds" "drainDelaySeconds" "drainTimeoutSeconds" -}}
{{- if lt (int (index $v.drain $k)) 0 -}}
{{- fail (printf "drain.%s is negative" $k) -}}
{{- end -}}
{{- end -}}
{{- if lt (int $v.drain.drainTimeoutSeconds) 1 -}}
{{- fail "drain.drainTimeoutSeconds must be at least 1" -}}
{{- end -}}
{{- if not (hasPrefix "/" (toString $v.path)) -}}
{{- fail (printf "path %q must start with /" (toString $v.path)) -}}
{{- end -}}
{{- end -}}
