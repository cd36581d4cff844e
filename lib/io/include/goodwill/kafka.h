/*
 * gw_kafka: the only module that speaks to librdkafka. A producer and a consumer driven by a
 * libuv loop, and the embedded Kafka-protocol cluster used by goodwill-devkafka and tests.
 *
 * Loop integration: librdkafka's queues signal an eventfd/pipe watched by uv_poll; every
 * wake-up drains the queue (bounded per turn, the rest is scheduled on an idle handle),
 * because the fd is written only when a queue goes from empty to non-empty.
 *
 * Threading: every function must be called on the loop thread, and every callback runs on it.
 *
 * Configuration pass-through: `properties` are "name=value" strings handed to librdkafka
 * unchanged (security.protocol, sasl.*, ssl.*, ...), applied after goodwill's own defaults
 * so an operator can tune them. The settings goodwill's guarantees rest on are protected: a
 * producer refuses enable.idempotence, acks and its alias request.required.acks; a consumer
 * refuses enable.auto.offset.store, enable.auto.commit (and the legacy auto.commit.enable)
 * and auto.offset.reset; each also with librdkafka's "topic." prefix. Naming one fails
 * creation with -EINVAL and err saying "kafka property <name> may not be set: <why>". An
 * invalid property fails creation with librdkafka's message in err.
 *
 * Fatal errors: librdkafka raises a fatal error when a client cannot go on without breaking
 * its guarantees (the idempotent producer lost its sequence with the brokers; a consumer was
 * fenced out of its group). The client logs it once, keeps the reason ("<ERROR_NAME>:
 * <librdkafka's words>", see gw_kafka_producer_fatal / gw_kafka_consumer_fatal) and calls its
 * owner's on_fatal once, on the loop; from then on the producer fails every produce (-EIO)
 * and the consumer delivers nothing more. Only a new client can go on: the owner should stop
 * being ready, drain and exit non-zero.
 */
#ifndef GOODWILL_KAFKA_H
#define GOODWILL_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "goodwill/log.h"
#include "goodwill/metrics.h"

/* Told once, on the loop, that a client failed for good; reason is borrowed for the call. */
typedef void (*gw_kafka_fatal_cb)(void *opaque, const char *reason);

typedef struct gw_kafka_header {
  const char *name;
  const void *value;
  size_t value_len;
} gw_kafka_header;

/* ---------------------------------------------------------------- producer */

typedef struct gw_kafka_producer gw_kafka_producer;

typedef struct gw_kafka_producer_config {
  const char *bootstrap; /* "host:port,host:port" */
  const char *client_id;
  const char *const *properties; /* nproperties "name=value", may be NULL */
  size_t nproperties;
  uint64_t delivery_timeout_ms; /* message.timeout.ms: report failure after this */
  size_t queue_max_messages;    /* queue.buffering.max.messages */
  uint64_t linger_ms;           /* linger.ms */
  const gw_log *log;            /* borrowed */
  gw_kafka_fatal_cb on_fatal;   /* optional: the producer failed for good (see the top) */
  void *fatal_opaque;
} gw_kafka_producer_config;

/*
 * Delivery report: status 0 when the record is acknowledged by the brokers (acks=all, the
 * producer is idempotent), otherwise a negative code with librdkafka's reason in errstr:
 * -ETIMEDOUT: not delivered within delivery_timeout_ms; -EMSGSIZE: the brokers refuse the
 * record as too large, and -EBADMSG: as invalid (both permanent: sending the same record again
 * cannot succeed); -EIO: any other failure.
 * partition/offset are those assigned on success (-1 otherwise).
 */
typedef void (*gw_kafka_delivery_cb)(void *opaque, int status, const char *errstr,
                                     int32_t partition, int64_t offset);

int gw_kafka_producer_new(gw_kafka_producer **out, uv_loop_t *loop,
                          const gw_kafka_producer_config *cfg, char *err, size_t errlen);

/*
 * Queues one record (key and value are copied). Returns 0 and calls cb exactly once later, or
 * fails synchronously without calling cb: -ENOBUFS when the local queue is full, -EMSGSIZE
 * when the record exceeds the producer's message.max.bytes, -EINVAL for an invalid topic,
 * -ESHUTDOWN after close began, -EIO after a fatal error (gw_kafka_producer_fatal).
 */
int gw_kafka_produce(gw_kafka_producer *p, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len, const gw_kafka_header *headers,
                     size_t nheaders, gw_kafka_delivery_cb cb, void *opaque);

/* Records queued or in flight (awaiting their delivery report). */
size_t gw_kafka_producer_queue_len(const gw_kafka_producer *p);

/* True once the producer has fetched metadata from a broker (for /readyz); false after a
 * fatal error. */
bool gw_kafka_producer_connected(const gw_kafka_producer *p);

/* NULL, or the reason of the fatal error that ended the producer (owned by the producer, valid
 * until it is closed). */
const char *gw_kafka_producer_fatal(const gw_kafka_producer *p);

/*
 * Flushes (waits up to timeout_ms for outstanding delivery reports, all of which are
 * delivered through their callbacks, as failures if they time out), then destroys the
 * producer and calls close_cb. Does not block the loop.
 */
void gw_kafka_producer_close(gw_kafka_producer *p, uint64_t timeout_ms,
                             void (*close_cb)(void *opaque), void *opaque);

/* ---------------------------------------------------------------- consumer */

typedef struct gw_kafka_consumer gw_kafka_consumer;

typedef struct gw_kafka_message {
  const char *topic;
  int32_t partition;
  int64_t offset;
  const void *key;
  size_t key_len;
  const void *value;
  size_t value_len;
  int64_t timestamp_ms; /* record timestamp, -1 when absent */
  /* Record headers in order (names NUL-terminated, values not), borrowed like the rest. */
  const gw_kafka_header *headers;
  size_t nheaders;
} gw_kafka_message;

typedef struct gw_kafka_partition {
  const char *topic;
  int32_t partition;
} gw_kafka_partition;

typedef struct gw_kafka_consumer_handlers {
  /* One record, borrowed for the duration of the call. */
  void (*on_message)(void *opaque, const gw_kafka_message *m);
  /* Partitions newly assigned / about to be revoked. After on_revoke returns, offsets of
   * those partitions can no longer be stored. Either may be NULL. */
  void (*on_assign)(void *opaque, const gw_kafka_partition *parts, size_t nparts);
  void (*on_revoke)(void *opaque, const gw_kafka_partition *parts, size_t nparts);
  /* Optional: the consumer failed for good (see the top); no handler call follows but the
   * revocations of close. */
  gw_kafka_fatal_cb on_fatal;
} gw_kafka_consumer_handlers;

typedef struct gw_kafka_consumer_config {
  const char *bootstrap;
  const char *group_id;
  const char *client_id;
  const char *const *topics; /* ntopics names */
  size_t ntopics;
  const char *const *properties; /* pass-through, see above */
  size_t nproperties;
  uint64_t session_timeout_ms; /* session.timeout.ms */
  uint64_t commit_interval_ms; /* auto.commit.interval.ms for stored offsets */
  const gw_log *log;
  /* Optional: registers <metrics_prefix>_records_lost_total{topic,partition} (a counter, see
   * below) in this registry, borrowed; it must outlive the consumer. metrics_prefix, e.g.
   * "goodwill_scorer", is required with it. */
  gw_metrics *metrics;
  const char *metrics_prefix;
} gw_kafka_consumer_config;

/*
 * Subscribes with enable.auto.offset.store=false and auto.offset.reset=earliest: nothing is
 * committed that the caller has not stored with gw_kafka_consumer_store, and a new group (no
 * committed offset) starts at the beginning of each partition.
 *
 * Lost records: when the position of a partition falls out of the log (retention, or
 * goodwill-devkafka's per-partition limit, dropped records the consumer had not read yet),
 * librdkafka resets it to the earliest offset and reads on. The consumer detects the jump: per
 * partition it expects the offset after the last one delivered, and for the first record after
 * an assignment the group's committed offset (asked on the thread pool when the partition is
 * assigned). A record past the expected offset means the records in between were never read:
 * an error line names topic, partition, the first and last offsets skipped and their count, and
 * they are counted (gw_kafka_consumer_records_lost, and the metric above). This relies on
 * offsets being contiguous, which holds for goodwill's topics: its producers are idempotent,
 * never transactional (transaction markers and aborted records would leave gaps), and no topic
 * is compacted. A partition without a committed offset starts wherever its log starts, which
 * is not counted: nothing was read there before.
 */
int gw_kafka_consumer_new(gw_kafka_consumer **out, uv_loop_t *loop,
                          const gw_kafka_consumer_config *cfg,
                          const gw_kafka_consumer_handlers *handlers, void *opaque, char *err,
                          size_t errlen);

/* Stores next_offset (the offset of the next record to read, i.e. last done + 1) for commit.
 * -ESRCH when the partition is no longer assigned (normal after a rebalance), or after a fatal
 * error. */
int gw_kafka_consumer_store(gw_kafka_consumer *c, const char *topic, int32_t partition,
                            int64_t next_offset);

/* Commits the stored offsets now (asynchronously); -EIO after a fatal error. */
int gw_kafka_consumer_commit(gw_kafka_consumer *c);

/* The group's committed offset of an assigned partition, as asked when it was assigned: 0 with
 * *out, -EAGAIN while the answer is awaited, -ENOENT when nothing was committed (a new group)
 * or the question failed, -ESRCH when the partition is not assigned. */
int gw_kafka_consumer_committed(gw_kafka_consumer *c, const char *topic, int32_t partition,
                                int64_t *out);

/* Read the partition again from offset (GW_KAFKA_OFFSET_BEGINNING: its earliest record), as
 * when a store derived from it lost data; the next record delivered for it is that one.
 * Asynchronous. -ESRCH when the partition is not assigned (or after a fatal error), -EINVAL
 * for a negative offset, -EIO otherwise. Lost-record detection takes it as a step back. */
#define GW_KAFKA_OFFSET_BEGINNING (-2)
int gw_kafka_consumer_seek(gw_kafka_consumer *c, const char *topic, int32_t partition,
                           int64_t offset);

/* Stops / restarts delivery of messages (backpressure); assignment is kept. */
void gw_kafka_consumer_pause(gw_kafka_consumer *c);
void gw_kafka_consumer_resume(gw_kafka_consumer *c);

/* True when the consumer has joined its group and holds an assignment (maybe empty). */
bool gw_kafka_consumer_assigned(const gw_kafka_consumer *c);

/* NULL, or the reason of the fatal error that ended the consumer (owned by the consumer). */
const char *gw_kafka_consumer_fatal(const gw_kafka_consumer *c);

/* Records skipped without being read since the consumer was created (see above). */
uint64_t gw_kafka_consumer_records_lost(const gw_kafka_consumer *c);

/* Commits stored offsets, leaves the group (rd_kafka_consumer_close_queue) and calls
 * close_cb; no more handler calls after close_cb. Does not block the loop. After a fatal error
 * librdkafka can neither commit nor leave the group: the client is only destroyed, and the
 * group gives its partitions to other members after the session timeout. */
void gw_kafka_consumer_close(gw_kafka_consumer *c, void (*close_cb)(void *opaque), void *opaque);

/* The goodwill topics (DESIGN.md). */
#define GW_TOPIC_INTERACTIONS "goodwill.interactions.v1"
#define GW_TOPIC_SCORED       "goodwill.scored.v1"
#define GW_TOPIC_DLQ          "goodwill.dlq.v1"

#endif
