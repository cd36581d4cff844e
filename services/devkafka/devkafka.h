/*
 * gw_devkafka: the embedded Kafka-protocol cluster for local stacks and tests, on librdkafka's
 * mock cluster (librdkafka/rdkafka_mock.h; this module is its only user). It lives beside
 * goodwill-devkafka and is linked by that program and by the tests only: the production
 * daemons never carry it.
 *
 * Threads: the cluster runs on librdkafka's own threads; these functions may be called from
 * any one thread. Errors: negative errno-style codes, with a message in err where there is one.
 * Limits of the mock cluster (all in memory, about 5 MiB or 100,000 batches per partition, no
 * SASL/SSL, no transactions to rely on) are in ../shared/PITFALLS.md and docs/ARCHITECTURE.md.
 */
#ifndef GW_DEVKAFKA_H
#define GW_DEVKAFKA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct gw_devkafka gw_devkafka;

/*
 * Starts librdkafka's mock cluster with nbrokers brokers on 127.0.0.1 (its own threads) and
 * creates each topic with npartitions partitions and replication factor min(3, nbrokers).
 * The cluster speaks the Kafka protocol over TCP; any Kafka client can use it.
 */
int gw_devkafka_start(gw_devkafka **out, int nbrokers, int npartitions, const char *const *topics,
                      size_t ntopics, char *err, size_t errlen);
const char *gw_devkafka_bootstrap(const gw_devkafka *d); /* "127.0.0.1:p1,127.0.0.1:p2,..." */
/* Fault injection for tests: take broker (1-based id) down or up. */
int gw_devkafka_broker_set_up(gw_devkafka *d, int broker_id, bool up);
/* Fault injection for tests: the next count Produce requests to the cluster fail with a
 * non-retriable error (TOPIC_AUTHORIZATION_FAILED), so the records of those requests are
 * reported as failed deliveries (-EIO). */
int gw_devkafka_fail_produce(gw_devkafka *d, size_t count);
/* Fault injection for tests: the next count Produce requests are refused with
 * MESSAGE_TOO_LARGE, so their records are reported as failed deliveries (-EMSGSIZE). */
int gw_devkafka_refuse_produce_too_large(gw_devkafka *d, size_t count);
void gw_devkafka_stop(gw_devkafka *d);

#endif
