{{/*
Names, labels and the pieces every workload shares. The components are ingest, scorer,
aggregator and read-api; each is a Deployment of the same image.
*/}}

{{- define "goodwill.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "goodwill.fullname" -}}
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

{{- define "goodwill.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride -}}
{{- end -}}

{{- define "goodwill.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The name of a component's resources: (dict "ctx" $ "component" "ingest"). */}}
{{- define "goodwill.componentName" -}}
{{- printf "%s-%s" (include "goodwill.fullname" .ctx | trunc 52 | trimSuffix "-") .component -}}
{{- end -}}

{{- define "goodwill.selectorLabels" -}}
app.kubernetes.io/name: {{ include "goodwill.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "goodwill.labels" -}}
{{ include "goodwill.selectorLabels" . }}
helm.sh/chart: {{ include "goodwill.chart" .ctx }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: goodwill
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "goodwill.annotations" -}}
{{- with .Values.commonAnnotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* metadata of a namespaced resource of a component: (dict "ctx" $ "component" "ingest" "name" "...") */}}
{{- define "goodwill.metadata" -}}
name: {{ .name | default (include "goodwill.componentName" .) }}
namespace: {{ .namespace | default (include "goodwill.namespace" .ctx) }}
labels:
  {{- include "goodwill.labels" . | nindent 2 }}
  {{- with .labels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- include "goodwill.annotations" .ctx }}
{{- end -}}

{{- define "goodwill.image" -}}
{{- $img := .Values.image -}}
{{- $repo := $img.repository -}}
{{- if $img.registry }}{{ $repo = printf "%s/%s" $img.registry $img.repository }}{{ end -}}
{{- if $img.digest -}}
{{- printf "%s@%s" $repo $img.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (default .Chart.AppVersion $img.tag | toString) -}}
{{- end -}}
{{- end -}}

{{- define "goodwill.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "goodwill.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
The aggregator's mode flag: goodwill-aggregator --mode all|apply|read (GOODWILL_MODE); its name
lives here only, so a rename is a one-line change.
*/}}
{{- define "goodwill.aggregator.modeFlag" -}}--mode{{- end -}}
{{- define "goodwill.aggregator.modeArg" -}}
{{- printf "%s=%s" (include "goodwill.aggregator.modeFlag" .) .mode -}}
{{- end -}}

{{/* Secret names: the existing one when given, else the chart's. */}}
{{- define "goodwill.tokensSecretName" -}}
{{- default (printf "%s-tokens" (include "goodwill.fullname" .)) .Values.auth.existingSecret -}}
{{- end -}}
{{- define "goodwill.lexiconOverlayName" -}}
{{- printf "%s-scorer-lexicon" (include "goodwill.fullname" .) -}}
{{- end -}}
{{- define "goodwill.kafkaSaslSecretName" -}}
{{- default (printf "%s-kafka-sasl" (include "goodwill.fullname" .)) .Values.kafka.sasl.existingSecret -}}
{{- end -}}
{{- define "goodwill.redisSecretName" -}}
{{- default (printf "%s-redis" (include "goodwill.fullname" .)) .Values.redis.auth.existingSecret -}}
{{- end -}}
{{- define "goodwill.redisSecretKey" -}}
{{- if .Values.redis.auth.existingSecret -}}{{ .Values.redis.auth.existingSecretPasswordKey }}{{- else -}}redis-password{{- end -}}
{{- end -}}
{{- define "goodwill.testSecretName" -}}
{{- default (printf "%s-test-token" (include "goodwill.fullname" .)) .Values.tests.existingSecret -}}
{{- end -}}

{{/*
The helm test's token: kept across upgrades (read back from the cluster), so the tokens
Secret does not change, and the pods do not roll, on every upgrade. Only when the chart manages
the tokens file.
*/}}
{{- define "goodwill.testToken" -}}
{{- $name := printf "%s-test-token" (include "goodwill.fullname" .) -}}
{{- $existing := lookup "v1" "Secret" (include "goodwill.namespace" .) $name -}}
{{- if and $existing $existing.data (hasKey $existing.data "token") -}}
{{- index $existing.data "token" | b64dec -}}
{{- else -}}
{{- $cached := get .Values "__goodwillTestToken" -}}
{{- if not $cached -}}
{{- $cached = randAlphaNum 40 -}}
{{- $_ := set .Values "__goodwillTestToken" $cached -}}
{{- end -}}
{{- $cached -}}
{{- end -}}
{{- end -}}

{{- define "goodwill.chartManagesTokens" -}}
{{- if and (not .Values.auth.devMode) (not .Values.auth.existingSecret) -}}true{{- end -}}
{{- end -}}

{{/* The tokens file the chart writes: the user's lines, then the helm test's token. */}}
{{- define "goodwill.tokensFile" -}}
{{- $file := .Values.auth.tokensFile | trim -}}
{{- if $file }}{{ $file }}{{ "\n" }}{{ end -}}
{{- if .Values.tests.enabled -}}
{{- printf "%s\t%s\thelm test (chart-made)\n" (include "goodwill.testToken" . | sha256sum) .Values.tests.tenant -}}
{{- end -}}
{{- end -}}

{{/* Fails with a clear message on values the schema cannot express. */}}
{{- define "goodwill.validate" -}}
{{- if not .Values.kafka.bootstrap -}}
{{- fail "kafka.bootstrap is required: the Kafka bootstrap servers host:port,..." -}}
{{- end -}}
{{- if not .Values.redis.url -}}
{{- fail "redis.url is required: redis://host:port of the aggregates (the password goes in redis.auth)" -}}
{{- end -}}
{{- if regexMatch "^rediss?://[^/]*@" .Values.redis.url -}}
{{- fail "redis.url must not hold a password: use redis.auth (a Secret)" -}}
{{- end -}}
{{- if and (not .Values.auth.devMode) (not .Values.auth.existingSecret) (not .Values.auth.tokensFile) (not .Values.tests.enabled) -}}
{{- fail "auth: set auth.existingSecret or auth.tokensFile (or auth.devMode=true for a demo): ingest and the read API refuse to start without tokens" -}}
{{- end -}}
{{- if and .Values.auth.devMode (or .Values.auth.existingSecret .Values.auth.tokensFile) -}}
{{- fail "auth.devMode=true turns authentication off: leave auth.existingSecret and auth.tokensFile empty" -}}
{{- end -}}
{{- if and .Values.kafka.sasl.enabled (not .Values.kafka.sasl.existingSecret) (not (and .Values.kafka.sasl.username .Values.kafka.sasl.password)) -}}
{{- fail "kafka.sasl.enabled: set kafka.sasl.existingSecret, or kafka.sasl.username and kafka.sasl.password" -}}
{{- end -}}
{{- if and .Values.redis.auth.enabled (not .Values.redis.auth.existingSecret) (not .Values.redis.auth.password) -}}
{{- fail "redis.auth.enabled: set redis.auth.existingSecret or redis.auth.password" -}}
{{- end -}}
{{- if and (not .Values.readApi.enabled) (ne .Values.aggregator.mode "all") -}}
{{- fail "readApi.enabled=false needs aggregator.mode=all, or nothing serves the read API" -}}
{{- end -}}
{{- if and .Values.metrics.serviceMonitor.enabled .Values.metrics.podMonitor.enabled -}}
{{- fail "enable metrics.serviceMonitor or metrics.podMonitor, not both: every daemon would be scraped twice" -}}
{{- end -}}
{{- if and .Values.tests.enabled .Values.auth.existingSecret (not .Values.tests.existingSecret) -}}
{{- fail "tests.enabled with auth.existingSecret: set tests.existingSecret (a Secret with key token, a token of tests.tenant listed in your tokens file), or tests.enabled=false" -}}
{{- end -}}
{{- if and .Values.scorer.lexiconOverlay (hasKey .Values.scorer.config "lexicon-overlay") -}}
{{- fail "scorer.lexiconOverlay mounts the overlay and sets GOODWILL_LEXICON_OVERLAY: leave lexicon-overlay out of scorer.config" -}}
{{- end -}}
{{- range $c := list "scorer" "aggregator" -}}
{{- $a := (index $.Values $c).autoscaling -}}
{{- if and (eq $a.mode "keda") (not $a.keda.serverAddress) -}}
{{- fail (printf "%s.autoscaling.mode=keda needs %s.autoscaling.keda.serverAddress (the Prometheus URL)" $c $c) -}}
{{- end -}}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) -}}
{{- fail (printf "%s.autoscaling.minReplicas is above maxReplicas" $c) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The Kafka topic a consumer component reads, for its lag. */}}
{{- define "goodwill.inputTopic" -}}
{{- if eq . "scorer" -}}goodwill.interactions.v1{{- else -}}goodwill.scored.v1{{- end -}}
{{- end -}}

{{/* The default PromQL of a consumer's lag: (dict "ctx" $ "component" "scorer") */}}
{{- define "goodwill.lagQuery" -}}
sum(max by (topic, partition) (goodwill_kafka_consumer_lag{namespace="{{ include "goodwill.namespace" .ctx }}", topic="{{ include "goodwill.inputTopic" .component }}"}))
{{- end -}}

{{- define "goodwill.podAntiAffinity" -}}
{{- $sel := include "goodwill.selectorLabels" . | fromYaml -}}
{{- if eq .preset "soft" }}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- toYaml $sel | nindent 12 }}
{{- else if eq .preset "hard" }}
podAntiAffinity:
  requiredDuringSchedulingIgnoredDuringExecution:
    - topologyKey: kubernetes.io/hostname
      labelSelector:
        matchLabels:
          {{- toYaml $sel | nindent 10 }}
{{- end }}
{{- end -}}

{{/*
The termination grace of a component: its own value, or what its drain needs (the preStop
sleep, then --shutdown-grace) plus 10 s for the process to exit.
*/}}
{{- define "goodwill.terminationGrace" -}}
{{- if gt (int .v.terminationGracePeriodSeconds) 0 -}}
{{- .v.terminationGracePeriodSeconds -}}
{{- else -}}
{{- add (int (default 0 .v.preStopSleepSeconds)) (int .v.shutdownGraceSeconds) 10 -}}
{{- end -}}
{{- end -}}
