{{/* Names, labels and the small pieces every template shares. */}}

{{- define "fetchfleet.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* fetchfleet.fullname: at most 40 characters, so that every component's name (the longest
     suffix is "-coordinator-tls") stays within 63 and the Redis StatefulSet's within 52. */}}
{{- define "fetchfleet.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* fetchfleet.component: the full name of one component ("coordinator", ...). */}}
{{- define "fetchfleet.component" -}}
{{- printf "%s-%s" (include "fetchfleet.fullname" .root) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "fetchfleet.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{ include "fetchfleet.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: fetchfleet
{{- end -}}

{{- define "fetchfleet.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fetchfleet.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "fetchfleet.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fetchfleet.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* fetchfleet.image: a fetchfleet image reference from its repository. */}}
{{- define "fetchfleet.image" -}}
{{- printf "%s%s:%s" .root.Values.image.registry .repository (default .root.Chart.AppVersion .root.Values.image.tag) -}}
{{- end -}}

{{/* The coordinator's Service name, as workers and clients dial it. */}}
{{- define "fetchfleet.coordinatorHost" -}}
{{- printf "%s.%s.svc" (include "fetchfleet.component" (dict "root" . "component" "coordinator")) .Release.Namespace -}}
{{- end -}}

{{- define "fetchfleet.secure" -}}
{{- if ne .Values.security.mode "none" }}true{{ end -}}
{{- end -}}

{{/* Secret names of the certificates, the auth file and the Redis password. */}}
{{- define "fetchfleet.serverTlsSecret" -}}
{{- if eq .Values.security.mode "existingSecret" -}}
{{- required "security.serverSecret is required with security.mode existingSecret" .Values.security.serverSecret -}}
{{- else -}}
{{- include "fetchfleet.component" (dict "root" . "component" "coordinator-tls") -}}
{{- end -}}
{{- end -}}

{{- define "fetchfleet.workerTlsSecret" -}}
{{- if eq .Values.security.mode "existingSecret" -}}
{{- required "security.workerSecret is required with security.mode existingSecret" .Values.security.workerSecret -}}
{{- else -}}
{{- include "fetchfleet.component" (dict "root" . "component" "worker-tls") -}}
{{- end -}}
{{- end -}}

{{- define "fetchfleet.authSecret" -}}
{{- default (include "fetchfleet.component" (dict "root" . "component" "auth")) .Values.security.auth.existingSecret -}}
{{- end -}}

{{- define "fetchfleet.redisSecret" -}}
{{- if .Values.redis.enabled -}}
{{- default (include "fetchfleet.component" (dict "root" . "component" "redis")) .Values.redis.auth.existingSecret -}}
{{- else -}}
{{- required "externalRedis.existingSecret is required with redis.enabled false (no Redis without a password)" .Values.externalRedis.existingSecret -}}
{{- end -}}
{{- end -}}

{{- define "fetchfleet.redisSecretKey" -}}
{{- if .Values.redis.enabled -}}
{{- .Values.redis.auth.existingSecretPasswordKey -}}
{{- else -}}
{{- .Values.externalRedis.existingSecretPasswordKey -}}
{{- end -}}
{{- end -}}

{{/* fetchfleet.redisEnv: FETCHFLEET_REDIS built from the password Secret (Kubernetes
     expands $(FETCHFLEET_REDIS_PASSWORD) in the later variable), so no password is in a
     flag or in the rendered manifest. */}}
{{- define "fetchfleet.redisEnv" -}}
- name: FETCHFLEET_REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "fetchfleet.redisSecret" . }}
      key: {{ include "fetchfleet.redisSecretKey" . }}
{{- if .Values.redis.enabled }}
- name: FETCHFLEET_REDIS
  value: {{ printf "redis://:$(FETCHFLEET_REDIS_PASSWORD)@%s:%d" (include "fetchfleet.component" (dict "root" . "component" "redis")) (int .Values.redis.port) | quote }}
{{- else }}
- name: FETCHFLEET_REDIS
  value: {{ printf "redis://%s:$(FETCHFLEET_REDIS_PASSWORD)@%s/%d" .Values.externalRedis.username (required "externalRedis.address is required with redis.enabled false" .Values.externalRedis.address) (int .Values.externalRedis.db) | quote }}
{{- end }}
{{- end -}}

{{/* The restricted Pod Security profile, for every pod and container. */}}
{{- define "fetchfleet.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "fetchfleet.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "fetchfleet.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/* fetchfleet.seconds: a duration flag ("30s", "2m", "1h", "500ms") in whole seconds,
     rounded up; for grace periods derived from the binaries' own flags. */}}
{{- define "fetchfleet.seconds" -}}
{{- $d := toString . -}}
{{- if hasSuffix "ms" $d -}}
{{- div (add (trimSuffix "ms" $d | int) 999) 1000 -}}
{{- else if hasSuffix "s" $d -}}
{{- trimSuffix "s" $d | int -}}
{{- else if hasSuffix "m" $d -}}
{{- mul (trimSuffix "m" $d | int) 60 -}}
{{- else if hasSuffix "h" $d -}}
{{- mul (trimSuffix "h" $d | int) 3600 -}}
{{- else -}}
{{- fail (printf "%q is not a duration like 30s, 2m or 1h" $d) -}}
{{- end -}}
{{- end -}}

{{/* fetchfleet.externalRedisPort: the port of externalRedis.address (6379 when it has none). */}}
{{- define "fetchfleet.externalRedisPort" -}}
{{- $address := .Values.externalRedis.address -}}
{{- if regexMatch ":[0-9]+$" $address -}}
{{- regexFind "[0-9]+$" $address -}}
{{- else -}}
6379
{{- end -}}
{{- end -}}
