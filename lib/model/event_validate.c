/*
 * gw_event_validate: the one set of rules every event passes, whatever its source (JSON from
 * a client, protobuf from a client, a record read from Kafka). Protobuf-c checks none of
 * this: it accepts any enum number, any bytes in proto3 strings and absent oneofs.
 */
#include "goodwill/event.h"
#include "goodwill/ids.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static int gw_fail(gw_event_error *err, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int gw_fail(gw_event_error *err, const char *field, const char *fmt, ...) {
  if (err != NULL) {
    snprintf(err->field, sizeof(err->field), "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->reason, sizeof(err->reason), fmt, ap);
    va_end(ap);
  }
  return -EINVAL;
}

/*
 * Returns the byte offset of the first invalid UTF-8 sequence in s[0..len), or len when all
 * of it is valid. Follows the table of well-formed sequences in RFC 3629 section 4 (and
 * Unicode 15, table 3-7): overlong forms (C0, C1, E0 80..9F, F0 80..8F), UTF-16 surrogates
 * (ED A0..BF) and code points above U+10FFFF (F4 90.., F5..FF) are all rejected.
 */
static size_t gw_utf8_invalid_at(const unsigned char *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    unsigned char c = s[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c >= 0xC2 && c <= 0xDF) {
      n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      n = 3;
      if (c == 0xE0) {
        lo = 0xA0;
      } else if (c == 0xED) {
        hi = 0x9F;
      }
    } else if (c >= 0xF0 && c <= 0xF4) {
      n = 4;
      if (c == 0xF0) {
        lo = 0x90;
      } else if (c == 0xF4) {
        hi = 0x8F;
      }
    } else {
      return i;
    }
    if (len - i < n || s[i + 1] < lo || s[i + 1] > hi) {
      return i;
    }
    for (size_t k = 2; k < n; k++) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) {
        return i;
      }
    }
    i += n;
  }
  return len;
}

static bool gw_id_char_ok(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '@' || c == '-';
}

static int gw_check_id(const char *field, const char *s, size_t max_bytes, gw_event_error *err) {
  if (s == NULL || s[0] == '\0') {
    return gw_fail(err, field, "missing or empty");
  }
  size_t len = strlen(s);
  if (len > max_bytes) {
    return gw_fail(err, field, "too long: %zu bytes, at most %zu", len, max_bytes);
  }
  for (size_t i = 0; i < len; i++) {
    if (!gw_id_char_ok((unsigned char)s[i])) {
      return gw_fail(err, field,
                     "invalid character at byte %zu: only A-Z a-z 0-9 . _ @ - are allowed", i);
    }
  }
  return 0;
}

static int gw_check_text(const char *field, const char *s, bool required,
                         const gw_event_limits *lim, gw_event_error *err) {
  if (s == NULL || s[0] == '\0') {
    return required ? gw_fail(err, field, "missing or empty") : 0;
  }
  size_t len = strlen(s);
  if (len > lim->max_text_bytes) {
    return gw_fail(err, field, "too long: %zu bytes, at most %zu", len, lim->max_text_bytes);
  }
  size_t bad = gw_utf8_invalid_at((const unsigned char *)s, len);
  if (bad != len) {
    return gw_fail(err, field, "invalid UTF-8 at byte %zu", bad);
  }
  return 0;
}

static int gw_check_duration(const char *field, uint64_t v, gw_event_error *err) {
  if (v > (uint64_t)GW_EVENT_MAX_DURATION_MS) {
    return gw_fail(err, field, "must be an integer 0..%lld, got %" PRIu64, GW_EVENT_MAX_DURATION_MS,
                   v);
  }
  return 0;
}

/*
 * base and index name the turn ("turn.", or "closed.transcript" and its index). The field
 * names are formatted only once a check failed: the checks run first without an error to
 * fill (err NULL), since formatting them for every turn of every valid event cost more than
 * the checks.
 */
static int gw_check_turn(const char *base, long index, const Goodwill__V1__Turn *t,
                         const gw_event_limits *lim, gw_event_error *err) {
  char prefix[64];
  char field[96];
  if (gw_event_speaker_name(t->speaker) != NULL &&
      gw_check_text("", t->text, true, lim, NULL) == 0 &&
      gw_check_duration("", t->offset_ms, NULL) == 0) {
    return 0;
  }
  if (index >= 0) {
    snprintf(prefix, sizeof(prefix), "%s[%ld].", base, index);
  } else {
    snprintf(prefix, sizeof(prefix), "%s", base);
  }
  if (gw_event_speaker_name(t->speaker) == NULL) {
    snprintf(field, sizeof(field), "%sspeaker", prefix);
    if (t->speaker == GOODWILL__V1__SPEAKER__SPEAKER_UNSPECIFIED) {
      return gw_fail(err, field, "missing: must be one of customer, agent, bot");
    }
    return gw_fail(err, field, "must be one of customer, agent, bot, got %d", (int)t->speaker);
  }
  snprintf(field, sizeof(field), "%stext", prefix);
  int rc = gw_check_text(field, t->text, true, lim, err);
  if (rc != 0) {
    return rc;
  }
  snprintf(field, sizeof(field), "%soffset_ms", prefix);
  return gw_check_duration(field, t->offset_ms, err);
}

static int gw_check_closed(const Goodwill__V1__InteractionClosed *c, const gw_event_limits *lim,
                           gw_event_error *err) {
  int rc;
  if ((rc = gw_check_duration("closed.handle_ms", c->handle_ms, err)) != 0 ||
      (rc = gw_check_duration("closed.wait_ms", c->wait_ms, err)) != 0 ||
      (rc = gw_check_duration("closed.talk_ms", c->talk_ms, err)) != 0 ||
      (rc = gw_check_duration("closed.hold_ms", c->hold_ms, err)) != 0) {
    return rc;
  }
  if (c->transfers > GW_EVENT_MAX_TRANSFERS) {
    return gw_fail(err, "closed.transfers", "must be an integer 0..%d, got %" PRIu32,
                   GW_EVENT_MAX_TRANSFERS, c->transfers);
  }
  if (c->n_transcript > lim->max_turns) {
    return gw_fail(err, "closed.transcript", "too many turns: %zu, at most %zu", c->n_transcript,
                   lim->max_turns);
  }
  if (c->n_transcript > 0 && c->transcript == NULL) {
    return gw_fail(err, "closed.transcript", "missing");
  }
  for (size_t i = 0; i < c->n_transcript; i++) {
    const Goodwill__V1__Turn *t = c->transcript[i];
    if (t == NULL) {
      char prefix[64];
      snprintf(prefix, sizeof(prefix), "closed.transcript[%zu]", i);
      return gw_fail(err, prefix, "missing");
    }
    if ((rc = gw_check_turn("closed.transcript", (long)i, t, lim, err)) != 0) {
      return rc;
    }
    /* Scoring splits the transcript into opening and closing turns by order; a transcript
     * whose seq goes backwards was assembled wrongly and would be scored wrongly. */
    if (i > 0 && t->seq <= c->transcript[i - 1]->seq) {
      char field[96];
      snprintf(field, sizeof(field), "closed.transcript[%zu].seq", i);
      return gw_fail(err, field, "must be greater than the previous seq %" PRIu32 ", got %" PRIu32,
                     c->transcript[i - 1]->seq, t->seq);
    }
  }
  return 0;
}

static int gw_check_survey(const Goodwill__V1__SurveyResponse *s, const gw_event_limits *lim,
                           gw_event_error *err) {
  if (s->likelihood_presence_case !=
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND) {
    return gw_fail(err, "survey.likelihood_to_recommend", "missing: must be an integer 0..10");
  }
  if (s->likelihood_to_recommend > 10) {
    return gw_fail(err, "survey.likelihood_to_recommend", "must be an integer 0..10, got %" PRIu32,
                   s->likelihood_to_recommend);
  }
  return gw_check_text("survey.comment", s->comment, false, lim, err);
}

static int gw_check_time(int64_t occurred_at_ms, const gw_event_limits *lim, int64_t received_ms,
                         gw_event_error *err) {
  if (occurred_at_ms == 0) {
    return gw_fail(err, "occurred_at", "missing");
  }
  /* 128-bit arithmetic: both times come from outside (a client, a Kafka record) and their
   * difference may not fit 64 bits. */
  __int128 ahead = (__int128)occurred_at_ms - (__int128)received_ms;
  if (ahead > (__int128)lim->max_future_ms) {
    return gw_fail(err, "occurred_at",
                   "too far in the future: more than %" PRId64 " ms after it was received",
                   lim->max_future_ms);
  }
  if (-ahead > (__int128)lim->max_past_ms) {
    return gw_fail(err, "occurred_at",
                   "too far in the past: more than %" PRId64 " ms (%" PRId64
                   " days) before it was received",
                   lim->max_past_ms, (int64_t)(lim->max_past_ms / GW_DAY_MS));
  }
  return 0;
}

static size_t gw_min_size(size_t a, size_t b) {
  return a < b ? a : b;
}

static int64_t gw_min_i64(int64_t a, int64_t b) {
  return a < b ? a : b;
}

int gw_event_validate(const Goodwill__V1__InteractionEvent *ev, const gw_event_limits *given,
                      int64_t received_ms, gw_event_error *err) {
  if (err != NULL) {
    memset(err, 0, sizeof(*err));
  }
  if (ev == NULL) {
    return gw_fail(err, "", "missing event");
  }
  /* A limit may only tighten its hard bound: whatever a caller configured, nothing passes here
   * that a later stage, which validates with the hard bounds, would refuse. */
  gw_event_limits clamped = *given;
  clamped.max_turns = gw_min_size(clamped.max_turns, GW_EVENT_MAX_TURNS);
  clamped.max_text_bytes = gw_min_size(clamped.max_text_bytes, GW_EVENT_MAX_TEXT_BYTES);
  clamped.max_id_bytes = gw_min_size(clamped.max_id_bytes, GW_EVENT_MAX_ID_BYTES);
  clamped.max_future_ms = gw_min_i64(clamped.max_future_ms, GW_EVENT_MAX_FUTURE_MS);
  clamped.max_past_ms = gw_min_i64(clamped.max_past_ms, GW_EVENT_MAX_PAST_MS);
  const gw_event_limits *lim = &clamped;
  /* A derived event id is always GW_ID_HEX_LEN long: a smaller id limit must not reject the
   * ids this module assigns itself. */
  size_t max_event_id = lim->max_id_bytes > GW_ID_HEX_LEN ? lim->max_id_bytes : GW_ID_HEX_LEN;
  int rc;
  if ((rc = gw_check_id("event_id", ev->event_id, max_event_id, err)) != 0 ||
      (rc = gw_check_id("tenant_id", ev->tenant_id, lim->max_id_bytes, err)) != 0 ||
      (rc = gw_check_id("team_id", ev->team_id, lim->max_id_bytes, err)) != 0 ||
      (rc = gw_check_id("agent_id", ev->agent_id, lim->max_id_bytes, err)) != 0 ||
      (rc = gw_check_id("interaction_id", ev->interaction_id, lim->max_id_bytes, err)) != 0) {
    return rc;
  }
  if (gw_event_channel_name(ev->channel) == NULL) {
    if (ev->channel == GOODWILL__V1__CHANNEL__CHANNEL_UNSPECIFIED) {
      return gw_fail(err, "channel",
                     "missing: must be one of voice, chat, email, messaging, social");
    }
    return gw_fail(err, "channel", "must be one of voice, chat, email, messaging, social, got %d",
                   (int)ev->channel);
  }
  if ((rc = gw_check_time(ev->occurred_at_ms, lim, received_ms, err)) != 0) {
    return rc;
  }
  switch (ev->body_case) {
  case GOODWILL__V1__INTERACTION_EVENT__BODY_TURN:
    if (ev->turn == NULL) {
      return gw_fail(err, "turn", "missing");
    }
    return gw_check_turn("turn.", -1, ev->turn, lim, err);
  case GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED:
    if (ev->closed == NULL) {
      return gw_fail(err, "closed", "missing");
    }
    return gw_check_closed(ev->closed, lim, err);
  case GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY:
    if (ev->survey == NULL) {
      return gw_fail(err, "survey", "missing");
    }
    return gw_check_survey(ev->survey, lim, err);
  default:
    return gw_fail(err, "", "missing body: one of closed, survey, turn");
  }
}
