{{/*
The Deployment of one daemon. Called with a dict:
  ctx        the root context ($)
  component  ingest | scorer | aggregator | read-api
  v          the component's values
  program    goodwill-ingest | goodwill-scorer | goodwill-aggregator
  args       extra arguments of the component (list), before kafka properties and extraArgs
  env        extra EnvVars of the component (list)
  ports      list of (dict "name" "http" "port" 8080)
  liveness   (dict "port" "admin" "path" "/healthz")
  readiness  (dict "port" "admin" "path" "/readyz")
  tokens     mount the tokens file (bool)
  redis      mount or pass the Redis password (bool)
  kafka      pass the Kafka settings (bool)
  autoscaled the replica count belongs to an autoscaler (bool)
  lexiconOverlay the text of the scorer's lexicon overlay: mounted from its ConfigMap
             (configmaps.yaml) and passed as GOODWILL_LEXICON_OVERLAY ("" or absent: none)

The image's entrypoint is tini, so the container sets args only: tini runs the program as its
child, forwards SIGTERM and reaps. Configuration goes in GOODWILL_* variables (each flag
--foo-bar is GOODWILL_FOO_BAR); Kafka properties go in flags, because a list given by flags
replaces the one given by the environment (lib/base/config.c) and SASL needs flags.
*/}}
{{- define "goodwill.deployment" -}}
{{- $ctx := .ctx -}}
{{- $v := .v -}}
{{- $V := $ctx.Values -}}
{{- $tmpl := dict "ctx" $ctx "component" .component -}}
{{- $preStop := int (default 0 $v.preStopSleepSeconds) -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  {{- include "goodwill.metadata" $tmpl | nindent 2 }}
spec:
  {{- if not .autoscaled }}
  replicas: {{ $v.replicaCount }}
  {{- end }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "goodwill.selectorLabels" $tmpl | nindent 6 }}
  {{- with $v.updateStrategy }}
  strategy:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  template:
    metadata:
      labels:
        {{- include "goodwill.labels" $tmpl | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- if and .tokens (include "goodwill.chartManagesTokens" $ctx) }}
        checksum/tokens: {{ include "goodwill.tokensFile" $ctx | sha256sum }}
        {{- end }}
        {{- if and .kafka $V.kafka.sasl.enabled (not $V.kafka.sasl.existingSecret) }}
        checksum/kafka-sasl: {{ printf "%s/%s" $V.kafka.sasl.username $V.kafka.sasl.password | sha256sum }}
        {{- end }}
        {{- if .lexiconOverlay }}
        checksum/lexicon-overlay: {{ .lexiconOverlay | sha256sum }}
        {{- end }}
        {{- if and .redis $V.redis.auth.enabled (not $V.redis.auth.existingSecret) }}
        checksum/redis: {{ $V.redis.auth.password | sha256sum }}
        {{- end }}
        {{- if $V.metrics.scrapeAnnotations }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $v.containerPorts.admin | quote }}
        prometheus.io/path: /metrics
        {{- end }}
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ include "goodwill.serviceAccountName" $ctx }}
      automountServiceAccountToken: {{ $V.serviceAccount.automountServiceAccountToken }}
      # Service links would add *_SERVICE_HOST variables; the daemons skip them, but there is
      # no reason to have them.
      enableServiceLinks: false
      {{- with $V.image.pullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      terminationGracePeriodSeconds: {{ include "goodwill.terminationGrace" (dict "v" $v) }}
      {{- with $v.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      securityContext:
        {{- toYaml $V.podSecurityContext | nindent 8 }}
      {{- if $v.affinity }}
      affinity:
        {{- toYaml $v.affinity | nindent 8 }}
      {{- else if $v.podAntiAffinityPreset }}
      affinity:
        {{- include "goodwill.podAntiAffinity" (dict "ctx" $ctx "component" .component "preset" $v.podAntiAffinityPreset) | trim | nindent 8 }}
      {{- end }}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ .component }}
          image: {{ include "goodwill.image" $ctx }}
          imagePullPolicy: {{ $V.image.pullPolicy }}
          args:
            - {{ .program }}
            {{- range .args }}
            - {{ . | quote }}
            {{- end }}
            {{- if .kafka }}
            {{- range $V.kafka.properties }}
            - {{ printf "--kafka-property=%s" . | quote }}
            {{- end }}
            {{- if $V.kafka.sasl.enabled }}
            - {{ printf "--kafka-property=security.protocol=%s" $V.kafka.sasl.securityProtocol | quote }}
            - {{ printf "--kafka-property=sasl.mechanism=%s" $V.kafka.sasl.mechanism | quote }}
            # Expanded by the kubelet from the Secret-backed variables below.
            - "--kafka-property=sasl.username=$(GW_KAFKA_SASL_USERNAME)"
            - "--kafka-property=sasl.password=$(GW_KAFKA_SASL_PASSWORD)"
            {{- end }}
            {{- if $V.kafka.tls.caSecret }}
            - {{ printf "--kafka-property=ssl.ca.location=/etc/goodwill/kafka-ca/%s" $V.kafka.tls.caKey | quote }}
            {{- end }}
            {{- end }}
            {{- range $v.extraArgs }}
            - {{ . | quote }}
            {{- end }}
          env:
            - name: GOODWILL_LOG_LEVEL
              value: {{ $V.logLevel | quote }}
            - name: GOODWILL_ADMIN_HOST
              value: "0.0.0.0"
            - name: GOODWILL_ADMIN_PORT
              value: {{ $v.containerPorts.admin | quote }}
            - name: GOODWILL_SHUTDOWN_GRACE
              value: {{ printf "%ds" (int $v.shutdownGraceSeconds) | quote }}
            {{- if .kafka }}
            - name: GOODWILL_KAFKA_BOOTSTRAP
              value: {{ $V.kafka.bootstrap | quote }}
            {{- if $V.kafka.sasl.enabled }}
            - name: GW_KAFKA_SASL_USERNAME
              valueFrom:
                secretKeyRef:
                  name: {{ include "goodwill.kafkaSaslSecretName" $ctx }}
                  key: {{ $V.kafka.sasl.usernameKey }}
            - name: GW_KAFKA_SASL_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ include "goodwill.kafkaSaslSecretName" $ctx }}
                  key: {{ $V.kafka.sasl.passwordKey }}
            {{- end }}
            {{- end }}
            {{- if .tokens }}
            {{- if $V.auth.devMode }}
            - name: GOODWILL_DEV_MODE
              value: "true"
            {{- else }}
            - name: GOODWILL_TOKENS_FILE
              value: {{ printf "%s/%s" $V.auth.mountPath $V.auth.secretKey | quote }}
            {{- end }}
            {{- end }}
            {{- if .redis }}
            {{- if and $V.redis.auth.enabled (eq $V.redis.auth.passwordFrom "url") }}
            - name: GW_REDIS_PASSWORD
              valueFrom:
                secretKeyRef:
                  name: {{ include "goodwill.redisSecretName" $ctx }}
                  key: {{ include "goodwill.redisSecretKey" $ctx }}
            - name: GOODWILL_REDIS_URL
              value: {{ regexReplaceAll "^(rediss?://)" $V.redis.url "${1}:$(GW_REDIS_PASSWORD)@" | quote }}
            {{- else }}
            - name: GOODWILL_REDIS_URL
              value: {{ $V.redis.url | quote }}
            {{- end }}
            {{- if and $V.redis.auth.enabled (eq $V.redis.auth.passwordFrom "file") }}
            # Read by goodwill-aggregator once it knows GOODWILL_REDIS_PASSWORD_FILE (being added
            # separately; until then use redis.auth.passwordFrom=url).
            - name: GOODWILL_REDIS_PASSWORD_FILE
              value: {{ printf "%s/%s" $V.redis.auth.mountPath (include "goodwill.redisSecretKey" $ctx) | quote }}
            {{- end }}
            {{- end }}
            {{- if .lexiconOverlay }}
            - name: GOODWILL_LEXICON_OVERLAY
              value: /etc/goodwill/lexicon/overlay.tsv
            {{- end }}
            {{- with .env }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
            {{- range $key, $value := $v.config }}
            - name: {{ printf "GOODWILL_%s" ($key | upper | replace "-" "_") }}
              value: {{ $value | toString | quote }}
            {{- end }}
            {{- with $v.extraEnvVars }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            {{- range .ports }}
            - name: {{ .name }}
              containerPort: {{ .port }}
              protocol: TCP
            {{- end }}
          livenessProbe:
            httpGet:
              path: {{ .liveness.path }}
              port: {{ .liveness.port }}
            {{- toYaml $v.livenessProbe | nindent 12 }}
          readinessProbe:
            httpGet:
              path: {{ .readiness.path }}
              port: {{ .readiness.port }}
            {{- toYaml $v.readinessProbe | nindent 12 }}
          {{- if gt $preStop 0 }}
          lifecycle:
            preStop:
              # Keep serving while the endpoints controller and the load balancers drop this
              # pod; the kubelet sends SIGTERM (and the daemon drains) only after this.
              exec:
                command: ["/bin/sleep", "{{ $preStop }}"]
          {{- end }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $V.containerSecurityContext | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            {{- if and .tokens (not $V.auth.devMode) }}
            - name: tokens
              mountPath: {{ $V.auth.mountPath }}
              readOnly: true
            {{- end }}
            {{- if and .redis $V.redis.auth.enabled (eq $V.redis.auth.passwordFrom "file") }}
            - name: redis-password
              mountPath: {{ $V.redis.auth.mountPath }}
              readOnly: true
            {{- end }}
            {{- if and .kafka $V.kafka.tls.caSecret }}
            - name: kafka-ca
              mountPath: /etc/goodwill/kafka-ca
              readOnly: true
            {{- end }}
            {{- if .lexiconOverlay }}
            - name: lexicon-overlay
              mountPath: /etc/goodwill/lexicon
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $V.tmpVolume.sizeLimit }}
        {{- if and .tokens (not $V.auth.devMode) }}
        - name: tokens
          secret:
            secretName: {{ include "goodwill.tokensSecretName" $ctx }}
            items:
              - key: {{ $V.auth.secretKey }}
                path: {{ $V.auth.secretKey }}
        {{- end }}
        {{- if and .redis $V.redis.auth.enabled (eq $V.redis.auth.passwordFrom "file") }}
        - name: redis-password
          secret:
            secretName: {{ include "goodwill.redisSecretName" $ctx }}
            items:
              - key: {{ include "goodwill.redisSecretKey" $ctx }}
                path: {{ include "goodwill.redisSecretKey" $ctx }}
        {{- end }}
        {{- if and .kafka $V.kafka.tls.caSecret }}
        - name: kafka-ca
          secret:
            secretName: {{ $V.kafka.tls.caSecret }}
            items:
              - key: {{ $V.kafka.tls.caKey }}
                path: {{ $V.kafka.tls.caKey }}
        {{- end }}
        {{- if .lexiconOverlay }}
        - name: lexicon-overlay
          configMap:
            name: {{ include "goodwill.lexiconOverlayName" $ctx }}
            items:
              - key: overlay.tsv
                path: overlay.tsv
        {{- end }}
{{- end -}}
