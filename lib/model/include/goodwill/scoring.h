/*
 * gw_scoring: turns one validated InteractionEvent into the ScoredRecord goodwill-scorer
 * writes to goodwill.scored.v1: the feeling of an InteractionClosed (from its transcript, or
 * from the live turns the scorer buffered for it), or the NPS category and comment valence of
 * a SurveyResponse, with the dimensions, the facts, the model version, the event's
 * received_at_ms and the deterministic record id (ids.h over tenant and event id). An interaction
 * without a customer turn has customer_turns 0 and UNSPECIFIED polarities.
 *
 * Pure: no I/O; any thread (the model is immutable).
 */
#ifndef GOODWILL_SCORING_H
#define GOODWILL_SCORING_H

#include "goodwill/buf.h"
#include "goodwill/feeling.h"
#include "goodwill/ids.h"
#include "goodwill/v1/events.pb-c.h"
#include "goodwill/v1/scored.pb-c.h"

/* Flags of the scoring functions. GW_SCORING_EXPLAIN: the record carries the explanation of its
 * feeling scores (ScoredInteraction.explain_json, ScoredSurvey.comment_explain_json), at most
 * GW_SCORING_EXPLAIN_MAX_BYTES of JSON; a larger one is replaced by {"omitted":"..."} and one
 * that cannot be built (memory) is left out: the scores never depend on it. */
#define GW_SCORING_EXPLAIN           1u
#define GW_SCORING_EXPLAIN_MAX_BYTES (64 * 1024)

/*
 * Appends the packed ScoredRecord to record, its Kafka key ("tenant_id/team_id") to key, and
 * writes its record id; flags: 0 or GW_SCORING_EXPLAIN. Returns 0, or -ENOTSUP for a live Turn
 * (scored only as part of its interaction: the scorer buffers it and calls
 * gw_scoring_score_closed_turns on the close), or -EINVAL for an event without a body.
 */
int gw_scoring_score_event(const gw_feeling_model *m, const Goodwill__V1__InteractionEvent *ev,
                           unsigned flags, gw_buf *record, gw_buf *key,
                           char record_id[GW_ID_HEX_LEN + 1]);

/*
 * Scores an InteractionClosed event (ev's body must be closed) from the given turns instead of
 * its transcript: goodwill-scorer passes the Turn events it buffered for a live interaction,
 * sorted by seq, client retries of a turn left out. Everything else (dimensions, facts, the record
 * id derived from the close event) is as for gw_scoring_score_event, so a replayed close gives the
 * same record id. turns are borrowed. Returns 0, or -EINVAL when ev is not an InteractionClosed.
 */
int gw_scoring_score_closed_turns(const gw_feeling_model *m,
                                  const Goodwill__V1__InteractionEvent *ev,
                                  const Goodwill__V1__Turn *const *turns, size_t nturns,
                                  unsigned flags, gw_buf *record, gw_buf *key,
                                  char record_id[GW_ID_HEX_LEN + 1]);

/* NPS category of a likelihood to recommend: 9-10 promoter, 7-8 passive, 0-6 detractor. */
Goodwill__V1__NpsCategory gw_scoring_nps_category(unsigned likelihood);

#endif
