/*
 * gw_devkafka: the embedded Kafka-protocol cluster for local stacks and tests, on librdkafka's
 * mock cluster (librdkafka/rdkafka_mock.h; this module is its only user). It lives beside
 * goodwill-devkafka and is linked by that program and by the tests only: the production
 * daemons never carry it.
 *
 * Threads: the cluster runs on librdkafka's own threads; these functions may be called from
 * any one thread (gw_devkafka_sample from any thread, also while another one injects faults).
 * Errors: negative errno-style codes, with a message in err where there is one.
 *
 * Limits of the mock cluster: all in memory; each partition keeps at most 5 MiB of record
 * batches or 100,000 batches (GW_DEVKAFKA_PARTITION_MAX_*), and beyond that the mock drops the
 * oldest batches without a word. gw_devkafka_sample shows it: the partition's low watermark
 * moves up. No SASL/SSL, no transactions to rely on (docs/RELIABILITY.md, PITFALLS.md).
 */
#ifndef GW_DEVKAFKA_H
#define GW_DEVKAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What librdkafka 2.0.2's mock cluster keeps per partition (rdkafka_mock.c, checked by
 * appending 100 KB records: 52 were kept). */
#define GW_DEVKAFKA_PARTITION_MAX_BYTES   (5u * 1024u * 1024u)
#define GW_DEVKAFKA_PARTITION_MAX_BATCHES 100000u

typedef struct gw_devkafka gw_devkafka;

/*
 * Starts librdkafka's mock cluster with nbrokers brokers on 127.0.0.1 (its own threads) and
 * creates each topic with npartitions partitions and replication factor min(3, nbrokers),
 * partition p led by broker p % nbrokers + 1.
 * The cluster speaks the Kafka protocol over TCP; any Kafka client can use it.
 */
int gw_devkafka_start(gw_devkafka **out, int nbrokers, int npartitions, const char *const *topics,
                      size_t ntopics, char *err, size_t errlen);
const char *gw_devkafka_bootstrap(const gw_devkafka *d); /* "127.0.0.1:p1,127.0.0.1:p2,..." */
/* Fault injection for tests: take broker (1-based id) down or up. A broker that is down
 * closes its connections and refuses new ones; its partitions keep it as their leader, so
 * they cannot be produced to or fetched from until it is up again (or gets a new leader). */
int gw_devkafka_broker_set_up(gw_devkafka *d, int broker_id, bool up);
/* Fault injection for tests: broker broker_id (1-based) becomes the leader of topic's
 * partition; clients learn it from NOT_LEADER_OR_FOLLOWER answers and new metadata. -EINVAL
 * with err naming a topic not created at start, or a partition or broker out of range. */
int gw_devkafka_set_leader(gw_devkafka *d, const char *topic, int partition, int broker_id,
                           char *err, size_t errlen);
/* Fault injection for tests: the next count Produce requests to the cluster fail with a
 * non-retriable error (TOPIC_AUTHORIZATION_FAILED), so the records of those requests are
 * reported as failed deliveries (-EIO). */
int gw_devkafka_fail_produce(gw_devkafka *d, size_t count);
/* Fault injection for tests: the next count Produce requests are refused with
 * MESSAGE_TOO_LARGE, so their records are reported as failed deliveries (-EMSGSIZE). */
int gw_devkafka_refuse_produce_too_large(gw_devkafka *d, size_t count);
/*
 * Fault injection by name (tests, and goodwill-devkafka's admin port): the next count requests
 * of Kafka API `api` ("Produce", "Fetch", "Heartbeat", ... or the API key's number) that reach
 * the cluster fail with Kafka error `error` (its name as rd_kafka_err2name spells it, e.g.
 * "OUT_OF_ORDER_SEQUENCE_NUMBER", or its number). A Produce request failing with
 * OUT_OF_ORDER_SEQUENCE_NUMBER is fatal to the idempotent producer that sent it, a Heartbeat
 * failing with FENCED_INSTANCE_ID to the consumer (librdkafka 2.0.2, checked). -EINVAL with err
 * naming the unknown api or error, or for a count of 0 or above 10000.
 */
int gw_devkafka_push_request_errors(gw_devkafka *d, const char *api, const char *error,
                                    size_t count, char *err, size_t errlen);
/*
 * Per broker, in order, before the cluster-wide ones: the next request of `api` reaching broker
 * broker_id (1-based) is answered with `error` after delay_ms (0..600000). error may be
 * "NO_ERROR": the request then succeeds, only late; a Produce request so delayed keeps its
 * records in flight in the producer. -EINVAL as above, or for a bad broker or delay.
 */
int gw_devkafka_push_broker_request_error(gw_devkafka *d, int broker_id, const char *api,
                                          const char *error, int delay_ms, char *err,
                                          size_t errlen);

/* One partition of the topics created at start. */
typedef struct gw_devkafka_partition {
  const char *topic; /* owned by the gw_devkafka */
  int32_t partition;
  /* The watermarks: the first offset the partition still holds and the next one to be
   * written; -1 when the query failed. */
  int64_t low, high;
  /* Record batches appended since start and their records, read from the mock cluster's own
   * account of each append (its debug log): an estimate of the bytes held is
   * (high - low) * appended_bytes / appended_records. Both 0 when that account is missing. */
  uint64_t appended_bytes, appended_records;
} gw_devkafka_partition;

/* Partitions of the topics created at start (topics x partitions). */
size_t gw_devkafka_npartitions(const gw_devkafka *d);

/*
 * Fills out (gw_devkafka_npartitions entries) with every partition's watermarks, asked of the
 * brokers like any client would (ListOffsets), and append account. Blocks for up to timeout_ms
 * per partition: call it off an event loop. Returns 0, or -EIO when no query succeeded.
 */
int gw_devkafka_sample(gw_devkafka *d, gw_devkafka_partition *out, int timeout_ms);
void gw_devkafka_stop(gw_devkafka *d);

#endif
