/*
 * gw_scorer: the goodwill-scorer daemon as a library. Consumes InteractionEvents from
 * goodwill.interactions.v1 (consumer group "goodwill-scorer"), validates them with the same
 * rules as ingest (gw_event_validate) at the hard bounds of goodwill/event.h, so that whatever
 * an ingest accepted passes, scores them (gw_scoring_score_event) and writes the ScoredRecord
 * to goodwill.scored.v1 with the key the scoring gives ("tenant/team"). Event time is judged
 * against the event's received_at_ms, never against this clock; an event without it (written
 * to Kafka by another producer) is stamped from this clock first, and the stamp is carried in
 * the ScoredRecord.
 *
 * A record that cannot be decoded or is invalid goes to goodwill.dlq.v1 with its original key
 * and value and the headers goodwill-reason (the reason class, the field and the reason in
 * words), goodwill-source-topic, goodwill-source-partition, goodwill-source-offset and
 * goodwill-value-type (goodwill.v1.InteractionEvent). A ScoredRecord the brokers refuse for
 * good (too large, invalid: retrying would block its partition forever) goes there too, as
 * the value itself, with goodwill-value-type goodwill.v1.ScoredRecord and reason class
 * undeliverable. Other delivery failures are retried. Nothing is dropped silently.
 *
 * Live turns: the input topic is keyed tenant/interaction, so every event of an interaction
 * reaches one scorer, in order. A valid Turn is buffered per partition (gw_open_interactions)
 * and its offset stays in progress, so the committed offset never passes the oldest open
 * turn. An InteractionClosed without transcript is scored from the buffered turns (sorted by
 * seq, a client retry of a turn once); with a transcript, the transcript wins and the buffered
 * turns are released unscored (goodwill_scorer_turns_released_total). The close's offset and its
 * turns' offsets are done when the ScoredRecord is acknowledged. After a crash or a rebalance the
 * next owner reads from the committed offset and rebuilds the buffer; a close scored again
 * gives the same record id (derived from the close event), which the aggregator drops.
 * An open interaction is expired (each of its turns goes to the DLQ, reason class "expired")
 * when its last turn is more than turn_idle_timeout_ms older than its partition's stream time
 * (the largest occurred_at_ms seen there since it was assigned: event time) and was read at
 * least turn_expiry_grace_ms ago (so a backfill of old turns is not expired on arrival); when
 * no turn of it was read for turn_idle_timeout_ms of processing time (the loop's clock, checked
 * on a timer over every partition: a partition that stops receiving records never moves its
 * stream time); or, while more than max_open_bytes or max_open_turns are buffered, when it is the
 * least recently active interaction of the tenant holding the most bytes (or turns), so one
 * tenant's interactions that never close do not push out another's. A close arriving after that
 * is scored without turns (customer_turns 0, polarities UNSPECIFIED). Buffered turns do not count
 * toward max_in_flight.
 * A close is remembered (max_recent_closes of them, for turn_idle_timeout_ms): a turn of that
 * interaction read after it goes to the DLQ at once (reason class "turn_after_close"), so it
 * never holds its partition's committed offset. After a crash or rebalance the close is known
 * again only if the replay reads it: a stray turn whose close's offset was committed before is
 * buffered again and expires (DLQ, reason class "expired"); either way it is never scored.
 *
 * At least once: an input offset is stored for commit only after the record it produced
 * (scored or DLQ) was acknowledged by Kafka, and only over the contiguous done prefix of its
 * partition (gw_offsets). A failed delivery is retried with exponential backoff while the
 * consumer is paused; the input is never stored before its output is durable. Records in
 * flight are bounded: above max_in_flight the consumer pauses, below half it resumes. A
 * replayed input yields the same record id (gw_ids), so downstream dedupes replays. Input
 * records skipped without being read (goodwill/kafka.h, "Lost records") are logged and counted
 * in goodwill_scorer_records_lost_total{topic,partition}.
 *
 * The feeling model comes from lexicon_path (or the built-in lexicon) with
 * lexicon_overlay_path merged over it; gw_scorer_reload_lexicon loads both again.
 *
 * Threading: loop thread only; every callback runs on the loop. Ownership: the config's
 * strings, metrics and log are borrowed and must outlive the scorer (the lexicon paths are
 * copied); the scorer owns its Kafka clients, the feeling model and (when admin_port >= 0) its
 * admin server.
 */
#ifndef GOODWILL_SCORER_H
#define GOODWILL_SCORER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "goodwill/event.h"
#include "goodwill/log.h"
#include "goodwill/metrics.h"

typedef struct gw_scorer gw_scorer;

#define GW_SCORER_DEFAULT_TURN_IDLE_MS         (6 * 3600 * 1000LL)
#define GW_SCORER_DEFAULT_TURN_EXPIRY_GRACE_MS (60 * 1000LL)
#define GW_SCORER_DEFAULT_MAX_OPEN_TURNS       200000u
#define GW_SCORER_DEFAULT_MAX_OPEN_BYTES       ((size_t)256 << 20)
#define GW_SCORER_DEFAULT_MAX_RECENT_CLOSES    100000u

typedef struct gw_scorer_config {
  const char *kafka_bootstrap;         /* "host:port,..." (required) */
  const char *const *kafka_properties; /* "name=value" pass-through, may be NULL */
  size_t nkafka_properties;
  const char *group_id;             /* NULL: "goodwill-scorer" */
  const char *client_id;            /* NULL: "goodwill-scorer" */
  const char *input_topic;          /* NULL: GW_TOPIC_INTERACTIONS */
  const char *scored_topic;         /* NULL: GW_TOPIC_SCORED */
  const char *dlq_topic;            /* NULL: GW_TOPIC_DLQ */
  const char *lexicon_path;         /* NULL or "": the built-in lexicon */
  const char *lexicon_overlay_path; /* NULL or "": no overlay (docs/FEELING_MODEL.md,
                                       "Customisation") */
  size_t max_in_flight;             /* 0: 10000 */
  uint64_t session_timeout_ms;      /* 0: 10000 */
  uint64_t commit_interval_ms;      /* 0: 1000 */
  uint64_t delivery_timeout_ms;     /* one produce attempt; 0: 30000 */
  uint64_t retry_backoff_ms;        /* first retry delay; 0: 200 */
  uint64_t retry_backoff_max_ms;    /* 0: 10000 */
  uint64_t shutdown_grace_ms;       /* drain time on stop; 0: 20000 */
  int64_t turn_idle_timeout_ms;     /* after an open interaction's last turn, in event time and in
                                       processing time; 0: 6 h */
  int64_t turn_expiry_grace_ms;     /* processing time after a turn before its interaction may
                                       expire by event time; 0: 60 s; at most the idle timeout */
  size_t max_open_turns;            /* live turns buffered over all partitions; 0: 200000 */
  size_t max_open_bytes;            /* bytes buffered for them; 0: 256 MiB */
  size_t max_recent_closes;         /* closes remembered to refuse later turns; 0: 100000 */
  const char *admin_host;           /* NULL: "0.0.0.0" */
  int admin_port;                   /* 0: any free port; < 0: no admin server */
  gw_metrics *metrics;              /* borrowed; NULL: the scorer keeps its own */
  const gw_log *log;                /* borrowed, required */
  /* Optional: called once when a Kafka client failed for good (a fatal error, see
   * goodwill/kafka.h); gw_scorer_ready is false with the reason from then on. The owner should
   * stop the scorer and exit non-zero (goodwill-scorer: gw_daemon_fail). A stop after a
   * producer's fatal error does not wait for outstanding deliveries: none can succeed. */
  void (*on_fatal)(void *opaque, const char *reason);
  void *fatal_opaque;
  /* Scored records carry the explanation of their scores (explain_json, comment_explain_json:
   * gw_scoring's GW_SCORING_EXPLAIN); goodwill-scorer --explain. */
  bool explain;
} gw_scorer_config;

/*
 * Loads the lexicon, registers the goodwill_scorer_* metrics, starts the admin server, the
 * producer and the consumer. Returns 0, or a negative code with the reason logged (-EINVAL:
 * bad configuration or lexicon, -EEXIST: metrics already registered in cfg->metrics, libuv
 * codes for the admin listener). Nothing is left running on failure.
 */
int gw_scorer_start(uv_loop_t *loop, const gw_scorer_config *cfg, gw_scorer **out);

/*
 * Drains and stops: stops consuming, waits up to shutdown_grace_ms for outstanding deliveries
 * (retrying failed ones), stores and commits the offsets of everything delivered, leaves the
 * group, closes the producer and the admin server, frees the scorer and calls done_cb once.
 * status is 0 when everything consumed was delivered, -ETIMEDOUT when the grace expired with
 * records outstanding, or a fatal producer error left them undeliverable (their offsets were
 * not committed: the next owner reads them again).
 * Buffered live turns are not waited for: their offsets stay uncommitted and the next owner
 * reads them again.
 * A second call is ignored.
 */
void gw_scorer_stop(gw_scorer *s, void (*done_cb)(void *opaque, int status), void *opaque);

/*
 * Loads the lexicon and its overlay again from the configured files (goodwill-scorer calls it
 * on SIGHUP) and scores every record handled after the call with the new model. Synchronous,
 * on the loop: no record is scored meanwhile. On success logs "lexicon reloaded" with the new
 * and the previous model version, sets goodwill_build_info's model_version and counts
 * goodwill_scorer_lexicon_reloads_total{result="ok"}. On failure (a file missing or broken)
 * the old model stays, an error line names the file, the line and the reason, and
 * {result="error"} counts it. Returns 0 or the loader's negative code. Loop thread only.
 */
int gw_scorer_reload_lexicon(gw_scorer *s);

/* The version of the model records are scored with now (borrowed until the next reload). */
const char *gw_scorer_model_version(const gw_scorer *s);

/* The admin port actually bound (useful with admin_port 0); -1 without an admin server. */
int gw_scorer_admin_port(const gw_scorer *s);

/* True when the consumer holds an assignment, the producer reached the cluster and neither
 * had a fatal error; otherwise writes the reason (the /readyz body). */
bool gw_scorer_ready(const gw_scorer *s, char *reason, size_t reason_len);

typedef struct gw_scorer_stats {
  uint64_t consumed;             /* records read from the input topic */
  uint64_t scored;               /* ScoredRecords acknowledged by Kafka */
  uint64_t dlq;                  /* DLQ records acknowledged by Kafka */
  uint64_t delivery_failures;    /* failed produce attempts (each was retried) */
  size_t in_flight;              /* records consumed and not yet done (buffered turns excluded) */
  bool paused;                   /* consumer paused (backpressure, retry or stop) */
  uint64_t turns_buffered;       /* valid live turns buffered (replays included) */
  uint64_t turns_released;       /* buffered turns superseded by a close's transcript */
  uint64_t interactions_expired; /* open interactions sent to the DLQ (idle or limit) */
  size_t open_interactions;      /* live interactions waiting for their close */
  size_t open_turns;             /* turns buffered for them */
  size_t open_bytes;             /* bytes held for them (gw_open_interactions_bytes) */
  uint64_t turns_after_close;    /* turns of a recently closed interaction, sent to the DLQ */
} gw_scorer_stats;

void gw_scorer_get_stats(const gw_scorer *s, gw_scorer_stats *out);

#endif
