{{- define "kms-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "kms-operator.serviceAccountName" -}}
{{- if and (not .Values.serviceAccount.create) (not .Values.serviceAccount.name) -}}
{{- fail "serviceAccount.name must name an existing ServiceAccount when serviceAccount.create is false" -}}
{{- end -}}
{{- default (include "kms-operator.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "kms-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "kms-operator.labels" -}}
{{ include "kms-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "kms-operator.leaderElection" -}}
{{- if or .Values.leaderElection.enabled (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* The rules on KmsKeys and events, shared by the ClusterRole and the namespaced Roles. */}}
{{- define "kms-operator.rules" -}}
- apiGroups: ["kms.boosterpack.io"]
  resources: ["kmskeys"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["kms.boosterpack.io"]
  resources: ["kmskeys/status"]
  verbs: ["patch"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- if .Values.exportToConfigMaps }}
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "patch", "delete"]
{{- end }}
{{- end -}}

{{/* A map of Region to endpoint URL as the operator's REGION=URL,... list, sorted by Region. */}}
{{- define "kms-operator.regionalEndpoints" -}}
{{- $pairs := list }}
{{- range $region, $url := . }}
{{- $pairs = append $pairs (printf "%s=%s" $region $url) }}
{{- end }}
{{- join "," $pairs }}
{{- end }}
