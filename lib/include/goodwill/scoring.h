/*
 * gw_scoring: turns one validated InteractionEvent into the ScoredRecord goodwill-scorer
 * writes to goodwill.scored.v1: the feeling of an InteractionClosed (from its transcript),
 * or the NPS category and comment valence of a SurveyResponse, with the dimensions, the
 * facts, the model version and the deterministic record id (ids.h over tenant and event id).
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

/*
 * Appends the packed ScoredRecord to record, its Kafka key ("tenant_id/team_id") to key, and
 * writes its record id. Returns 0, or -ENOTSUP for a body this version does not score (a live
 * Turn: the caller sends the input to the DLQ with that reason), or -EINVAL for an event
 * without a body.
 */
int gw_scoring_score_event(const gw_feeling_model *m, const Goodwill__V1__InteractionEvent *ev,
                           gw_buf *record, gw_buf *key, char record_id[GW_ID_HEX_LEN + 1]);

/* NPS category of a likelihood to recommend: 9-10 promoter, 7-8 passive, 0-6 detractor. */
Goodwill__V1__NpsCategory gw_scoring_nps_category(unsigned likelihood);

#endif
