{{- define "pk-mcp.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pk-mcp.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "pk-mcp.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "pk-mcp.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "pk-mcp.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/name: {{ include "pk-mcp.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "pk-mcp.selector" -}}
app.kubernetes.io/name: {{ include "pk-mcp.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "pk-mcp.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "pk-mcp.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* repository@digest when a digest is given (immutable), else repository:tag. */}}
{{- define "pk-mcp.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Security-scanner (checkov) findings this chart keeps on purpose, with the reason, as annotations on each
workload. tests/deploy/helm.test.ts fails on any finding not listed here.
*/}}
{{- define "pk-mcp.checkovSkips" -}}
checkov.io/skip1: "CKV_K8S_15=imagePullPolicy is a value (default IfNotPresent): with image.digest set the image cannot change under its name, and Always would add a registry round trip to every start"
{{- if .worker }}
checkov.io/skip2: "CKV_K8S_8=the worker serves no HTTP to probe: it exits on a fatal error (and is restarted), and a hung worker's jobs are taken over by BullMQ's stall detection after WORKER_LOCK_DURATION_MS"
checkov.io/skip3: "CKV_K8S_9=the worker takes no traffic, so readiness gates nothing: it pulls jobs from Redis when it is ready"
{{- end }}
{{- if and (not .migrate) (or .root.Values.secrets.openaiApiKey.existingSecret .root.Values.secrets.gitToken.existingSecret) }}
checkov.io/skip4: "CKV_K8S_35=OPENAI_API_KEY and GIT_TOKEN are read from the environment only (the config has no *_FILE for them yet); every store password is a file"
{{- end }}
{{- end -}}

{{/* Fails the render with a precise message when a setting cannot work. */}}
{{- define "pk-mcp.validate" -}}
{{- $r := .Values.stores.redis -}}
{{- if not (has $r.mode (list "standalone" "sentinel" "cluster")) -}}
{{- fail (printf "stores.redis.mode must be standalone, sentinel or cluster, not %q" $r.mode) -}}
{{- end -}}
{{- if and (eq $r.mode "sentinel") (empty $r.sentinels) -}}
{{- fail "stores.redis.mode=sentinel needs stores.redis.sentinels (host:port of each Sentinel)" -}}
{{- end -}}
{{- if and (eq $r.mode "cluster") (empty $r.nodes) -}}
{{- fail "stores.redis.mode=cluster needs stores.redis.nodes (host:port of some cluster nodes)" -}}
{{- end -}}
{{- if and (eq $r.mode "cluster") (not (regexMatch "^[^{}]*\\{[^{}]+\\}[^{}]*$" $r.queuePrefix)) -}}
{{- fail (printf "stores.redis.queuePrefix %q has no hash tag: on Redis Cluster every key of a queue must share one slot, e.g. queuePrefix: \"{pkmcp}\"" $r.queuePrefix) -}}
{{- end -}}
{{- range $name, $s := dict "redis" $r "postgres" .Values.stores.postgres "neo4j" .Values.stores.neo4j -}}
{{- if empty $s.existingSecret -}}
{{- fail (printf "stores.%s.existingSecret is required: the name of a Secret holding the %s password under key %q" $name $name $s.passwordKey) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Environment shared by API, workers and the migration: settings from the ConfigMap, secrets as files. */}}
{{- define "pk-mcp.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "pk-mcp.fullname" . }}
env:
  - name: REDIS_PASSWORD_FILE
    value: /run/secrets/pk-mcp/redis/{{ .Values.stores.redis.passwordKey }}
  - name: DATABASE_PASSWORD_FILE
    value: /run/secrets/pk-mcp/postgres/{{ .Values.stores.postgres.passwordKey }}
  - name: NEO4J_PASSWORD_FILE
    value: /run/secrets/pk-mcp/neo4j/{{ .Values.stores.neo4j.passwordKey }}
  {{- with .Values.secrets.adminToken.existingSecret }}
  - name: ADMIN_TOKEN_FILE
    value: /run/secrets/pk-mcp/admin/{{ $.Values.secrets.adminToken.key }}
  {{- end }}
  {{- with .Values.secrets.webhookSecret.existingSecret }}
  - name: WEBHOOK_SECRET_FILE
    value: /run/secrets/pk-mcp/webhook/{{ $.Values.secrets.webhookSecret.key }}
  {{- end }}
  {{- with .Values.secrets.openaiApiKey.existingSecret }}
  - name: OPENAI_API_KEY
    valueFrom: { secretKeyRef: { name: {{ . }}, key: {{ $.Values.secrets.openaiApiKey.key }} } }
  {{- end }}
  {{- with .Values.secrets.gitToken.existingSecret }}
  - name: GIT_TOKEN
    valueFrom: { secretKeyRef: { name: {{ . }}, key: {{ $.Values.secrets.gitToken.key }} } }
  {{- end }}
{{- end -}}

{{- define "pk-mcp.secretVolumes" -}}
- name: redis-password
  secret: { secretName: {{ .Values.stores.redis.existingSecret }}, defaultMode: 0400 }
- name: postgres-password
  secret: { secretName: {{ .Values.stores.postgres.existingSecret }}, defaultMode: 0400 }
- name: neo4j-password
  secret: { secretName: {{ .Values.stores.neo4j.existingSecret }}, defaultMode: 0400 }
{{- with .Values.secrets.adminToken.existingSecret }}
- name: admin-token
  secret: { secretName: {{ . }}, defaultMode: 0400 }
{{- end }}
{{- with .Values.secrets.webhookSecret.existingSecret }}
- name: webhook-secret
  secret: { secretName: {{ . }}, defaultMode: 0400 }
{{- end }}
- name: tmp
  emptyDir: { medium: Memory, sizeLimit: 256Mi }
{{- end -}}

{{- define "pk-mcp.secretMounts" -}}
- { name: redis-password, mountPath: /run/secrets/pk-mcp/redis, readOnly: true }
- { name: postgres-password, mountPath: /run/secrets/pk-mcp/postgres, readOnly: true }
- { name: neo4j-password, mountPath: /run/secrets/pk-mcp/neo4j, readOnly: true }
{{- if .Values.secrets.adminToken.existingSecret }}
- { name: admin-token, mountPath: /run/secrets/pk-mcp/admin, readOnly: true }
{{- end }}
{{- if .Values.secrets.webhookSecret.existingSecret }}
- { name: webhook-secret, mountPath: /run/secrets/pk-mcp/webhook, readOnly: true }
{{- end }}
- { name: tmp, mountPath: /tmp }
{{- end -}}

{{/* The data volumes every app pod writes to (the image's declared volumes). */}}
{{- define "pk-mcp.dataVolumes" -}}
- name: workspaces
  emptyDir: { sizeLimit: {{ .Values.persistence.workspaces.sizeLimit }} }
- name: backups
  {{- if .Values.persistence.backups.existingClaim }}
  persistentVolumeClaim: { claimName: {{ .Values.persistence.backups.existingClaim }} }
  {{- else }}
  emptyDir: { sizeLimit: {{ .Values.persistence.backups.sizeLimit }} }
  {{- end }}
- name: secrets-data
  emptyDir: { sizeLimit: {{ .Values.persistence.secrets.sizeLimit }} }
{{- end -}}

{{- define "pk-mcp.dataMounts" -}}
- { name: workspaces, mountPath: /data/workspaces }
- { name: backups, mountPath: /data/backups }
- { name: secrets-data, mountPath: /data/secrets }
{{- end -}}
