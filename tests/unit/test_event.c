/* Unit tests of gw_event: JSON/NDJSON parsing, validation rules, ids, packing, goodwill-gen. */
#include "goodwill/event.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_test.h"

/* 2026-11-23T10:00:00Z, the "now" of every test. */
#define T0 1795428000000LL

#define IDS                                                                                        \
  "\"tenant_id\":\"acme\",\"team_id\":\"billing\",\"agent_id\":\"a-17\",\"interaction_id\":\"c-"   \
  "123\""
#define WHEN   "\"occurred_at\":\"2026-11-23T10:00:00Z\""
#define HEAD   "{" IDS ",\"channel\":\"voice\"," WHEN ","
#define CLOSED "\"closed\":{\"handle_ms\":1000}"

static int parse(const char *body, gw_event_format fmt, const gw_event_limits *lim,
                 gw_event_batch *b) {
  return gw_event_parse_json(body, strlen(body), fmt, lim, T0, b);
}

/* Parses one object that must be rejected with exactly this field and reason. */
static void expect_error(int line, const char *body, const char *field, const char *reason) {
  gw_event_batch b;
  int rc = parse(body, GW_EVENT_FORMAT_JSON, NULL, &b);
  int ok = rc == 0 && b.nevents == 0 && b.nerrors == 1 && b.nitems == 1 &&
           strcmp(b.errors[0].field, field) == 0 && strcmp(b.errors[0].reason, reason) == 0;
  if (!ok) {
    fprintf(stderr, "test_event.c:%d: body %s\n  expected rc 0, [%s] %s\n  got rc %d, %zu errors",
            line, body, field, reason, rc, b.nerrors);
    if (b.nerrors > 0) {
      fprintf(stderr, ", first [%s] %s", b.errors[0].field, b.errors[0].reason);
    }
    fprintf(stderr, "\n");
    gw_test_failed_checks++;
  }
  gw_event_batch_free(&b);
}
#define EXPECT_ERROR(body, field, reason) expect_error(__LINE__, body, field, reason)

static void test_full_example(void) {
  const char *body =
      "{\"event_id\":\"e-1\"," IDS ",\"channel\":\"chat\",\"occurred_at\":\"2026-11-23T09:58:00Z\","
      "\"closed\":{\"handle_ms\":420000,\"wait_ms\":35000,\"talk_ms\":300000,\"hold_ms\":60000,"
      "\"transfers\":1,\"resolved\":false,\"transcript\":["
      "{\"seq\":1,\"speaker\":\"customer\",\"text\":\"Third time calling!\",\"offset_ms\":0},"
      "{\"seq\":2,\"speaker\":\"agent\",\"text\":\"I'm sorry, let me fix it.\",\"offset_ms\":4000},"
      "{\"seq\":3,\"speaker\":\"bot\",\"text\":\"caf\\u00e9 \xe2\x98\x95\",\"offset_ms\":9000}]}}";
  gw_event_batch b;
  CHECK_INT_EQ(parse(body, GW_EVENT_FORMAT_AUTO, NULL, &b), 0);
  CHECK_INT_EQ(b.nerrors, 0);
  CHECK_INT_EQ(b.nitems, 1);
  if (b.nevents == 1) {
    const Goodwill__V1__InteractionEvent *ev = b.events[0];
    CHECK_STR_EQ(ev->event_id, "e-1");
    CHECK_STR_EQ(ev->tenant_id, "acme");
    CHECK_STR_EQ(ev->team_id, "billing");
    CHECK_STR_EQ(ev->agent_id, "a-17");
    CHECK_STR_EQ(ev->interaction_id, "c-123");
    CHECK_INT_EQ(ev->channel, GOODWILL__V1__CHANNEL__CHANNEL_CHAT);
    CHECK_INT_EQ(ev->occurred_at_ms, T0 - 120000);
    CHECK_INT_EQ(ev->received_at_ms, T0);
    CHECK_INT_EQ(ev->body_case, GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED);
    const Goodwill__V1__InteractionClosed *c = ev->closed;
    CHECK_INT_EQ(c->handle_ms, 420000);
    CHECK_INT_EQ(c->wait_ms, 35000);
    CHECK_INT_EQ(c->talk_ms, 300000);
    CHECK_INT_EQ(c->hold_ms, 60000);
    CHECK_INT_EQ(c->transfers, 1);
    CHECK_INT_EQ(c->resolved_presence_case,
                 GOODWILL__V1__INTERACTION_CLOSED__RESOLVED_PRESENCE_RESOLVED);
    CHECK_INT_EQ(c->resolved, 0);
    CHECK_INT_EQ(c->n_transcript, 3);
    if (c->n_transcript == 3) {
      CHECK_INT_EQ(c->transcript[0]->speaker, GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER);
      CHECK_STR_EQ(c->transcript[0]->text, "Third time calling!");
      CHECK_INT_EQ(c->transcript[1]->seq, 2);
      CHECK_INT_EQ(c->transcript[1]->offset_ms, 4000);
      CHECK_INT_EQ(c->transcript[2]->speaker, GOODWILL__V1__SPEAKER__SPEAKER_BOT);
      CHECK_STR_EQ(c->transcript[2]->text, "caf\xc3\xa9 \xe2\x98\x95");
    }
  } else {
    CHECK_INT_EQ(b.nevents, 1);
  }
  gw_event_batch_free(&b);

  /* A survey and a live turn, with the optional parts absent or null. */
  CHECK_INT_EQ(parse(HEAD "\"survey\":{\"likelihood_to_recommend\":0,\"comment\":null}}",
                     GW_EVENT_FORMAT_JSON, NULL, &b),
               0);
  CHECK_INT_EQ(b.nevents, 1);
  if (b.nevents == 1) {
    CHECK_INT_EQ(b.events[0]->survey->likelihood_presence_case,
                 GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND);
    CHECK_INT_EQ(b.events[0]->survey->likelihood_to_recommend, 0);
    CHECK_STR_EQ(b.events[0]->survey->comment, "");
  }
  gw_event_batch_free(&b);
  CHECK_INT_EQ(parse(HEAD "\"turn\":{\"seq\":4,\"speaker\":\"customer\",\"text\":\"ok\"}}",
                     GW_EVENT_FORMAT_JSON, NULL, &b),
               0);
  CHECK_INT_EQ(b.nevents, 1);
  if (b.nevents == 1) {
    CHECK_INT_EQ(b.events[0]->turn->seq, 4);
  }
  gw_event_batch_free(&b);
}

static void test_field_errors(void) {
  /* Top level. */
  EXPECT_ERROR(HEAD "\"tenant\":\"x\"," CLOSED "}", "tenant", "unknown field");
  EXPECT_ERROR("{\"team_id\":\"billing\",\"agent_id\":\"a\",\"interaction_id\":\"c\","
               "\"channel\":\"voice\"," WHEN "," CLOSED "}",
               "tenant_id", "missing or empty");
  EXPECT_ERROR("{\"tenant_id\":\"\",\"team_id\":\"billing\",\"agent_id\":\"a\","
               "\"interaction_id\":\"c\",\"channel\":\"voice\"," WHEN "," CLOSED "}",
               "tenant_id", "missing or empty");
  EXPECT_ERROR("{\"tenant_id\":5}", "tenant_id", "must be a string");
  EXPECT_ERROR("{\"tenant_id\":\"ac me\",\"team_id\":\"billing\",\"agent_id\":\"a\","
               "\"interaction_id\":\"c\",\"channel\":\"voice\"," WHEN "," CLOSED "}",
               "tenant_id", "invalid character at byte 2: only A-Z a-z 0-9 . _ @ - are allowed");
  EXPECT_ERROR("{\"tenant_id\":\"acme\",\"team_id\":\"{b}\",\"agent_id\":\"a\","
               "\"interaction_id\":\"c\",\"channel\":\"voice\"," WHEN "," CLOSED "}",
               "team_id", "invalid character at byte 0: only A-Z a-z 0-9 . _ @ - are allowed");
  EXPECT_ERROR("{\"event_id\":[]}", "event_id", "must be a string");
  EXPECT_ERROR("{" IDS ",\"channel\":\"fax\"}", "channel",
               "must be one of voice, chat, email, messaging, social");
  EXPECT_ERROR("{" IDS "," WHEN "," CLOSED "}", "channel",
               "missing: must be one of voice, chat, email, messaging, social");
  EXPECT_ERROR("{" IDS ",\"channel\":\"email\"," CLOSED "}", "occurred_at", "missing");
  const char *bad_time =
      "must be an RFC 3339 timestamp such as 2026-11-23T10:00:00Z or an integer of epoch ms";
  EXPECT_ERROR("{\"occurred_at\":\"yesterday\"}", "occurred_at", bad_time);
  EXPECT_ERROR("{\"occurred_at\":\"2026-02-29T10:00:00Z\"}", "occurred_at", bad_time);
  EXPECT_ERROR("{\"occurred_at\":\"2026-11-23T10:00:00\"}", "occurred_at", bad_time);
  EXPECT_ERROR("{\"occurred_at\":\"2026-11-23T24:00:00Z\"}", "occurred_at", bad_time);
  EXPECT_ERROR("{\"occurred_at\":\"2026-11-23T10:00:00.Z\"}", "occurred_at", bad_time);
  EXPECT_ERROR("{\"occurred_at\":\"2026-11-23T10:00:00+0100\"}", "occurred_at", bad_time);
  EXPECT_ERROR("{\"occurred_at\":\"2026-11-23T10:00:00Z \"}", "occurred_at", bad_time);
  EXPECT_ERROR("{\"occurred_at\":1795428000000.5}", "occurred_at", bad_time);
  EXPECT_ERROR("{" IDS ",\"channel\":\"voice\"," WHEN "}", "",
               "missing body: one of closed, survey, turn");

  /* Bodies. */
  EXPECT_ERROR(HEAD CLOSED ",\"survey\":{\"likelihood_to_recommend\":1}}", "survey",
               "only one body is allowed: closed, survey or turn");
  EXPECT_ERROR(HEAD "\"survey\":[]}", "survey", "must be an object");
  EXPECT_ERROR(HEAD "\"turn\":\"hello\"}", "turn", "must be an object");
  EXPECT_ERROR(HEAD "\"survey\":{\"likelihood_to_recommend\":11}}",
               "survey.likelihood_to_recommend", "must be an integer 0..10, got 11");
  EXPECT_ERROR(HEAD "\"survey\":{\"likelihood_to_recommend\":-1}}",
               "survey.likelihood_to_recommend", "must be an integer 0..10, got -1");
  EXPECT_ERROR(HEAD "\"survey\":{\"likelihood_to_recommend\":\"9\"}}",
               "survey.likelihood_to_recommend", "must be an integer 0..10");
  EXPECT_ERROR(HEAD "\"survey\":{\"likelihood_to_recommend\":9.0}}",
               "survey.likelihood_to_recommend", "must be an integer 0..10");
  EXPECT_ERROR(HEAD "\"survey\":{\"comment\":\"great\"}}", "survey.likelihood_to_recommend",
               "missing: must be an integer 0..10");
  EXPECT_ERROR(HEAD "\"survey\":{\"likelihood_to_recommend\":9,\"coment\":\"x\"}}", "survey.coment",
               "unknown field");
  EXPECT_ERROR(HEAD "\"survey\":{\"likelihood_to_recommend\":9,\"comment\":5}}", "survey.comment",
               "must be a string");
  EXPECT_ERROR(HEAD "\"closed\":{\"handle_ms\":-5}}", "closed.handle_ms",
               "must be an integer 0..604800000, got -5");
  EXPECT_ERROR(HEAD "\"closed\":{\"wait_ms\":true}}", "closed.wait_ms",
               "must be an integer 0..604800000");
  EXPECT_ERROR(HEAD "\"closed\":{\"talk_ms\":2592000001}}", "closed.talk_ms",
               "must be an integer 0..604800000, got 2592000001");
  EXPECT_ERROR(HEAD "\"closed\":{\"transfers\":1001}}", "closed.transfers",
               "must be an integer 0..1000, got 1001");
  EXPECT_ERROR(HEAD "\"closed\":{\"resolved\":\"yes\"}}", "closed.resolved",
               "must be true or false");
  EXPECT_ERROR(HEAD "\"closed\":{\"handle_time\":1}}", "closed.handle_time", "unknown field");
  EXPECT_ERROR(HEAD "\"closed\":{\"transcript\":{}}}", "closed.transcript",
               "must be an array of turns");
  EXPECT_ERROR(HEAD "\"closed\":{\"transcript\":[5]}}", "closed.transcript[0]",
               "must be an object");
  EXPECT_ERROR(HEAD
               "\"closed\":{\"transcript\":[{\"seq\":1,\"speaker\":\"robot\",\"text\":\"hi\"}]}}",
               "closed.transcript[0].speaker", "must be one of customer, agent, bot");
  EXPECT_ERROR(HEAD "\"closed\":{\"transcript\":[{\"seq\":1,\"speaker\":\"customer\"}]}}",
               "closed.transcript[0].text", "missing or empty");
  EXPECT_ERROR(HEAD "\"closed\":{\"transcript\":[{\"seq\":1,\"speaker\":\"customer\",\"text\":"
                    "\"hi\",\"volume\":3}]}}",
               "closed.transcript[0].volume", "unknown field");
  EXPECT_ERROR(HEAD "\"closed\":{\"transcript\":[{\"seq\":1,\"speaker\":\"customer\",\"text\":"
                    "\"hi\"},{\"seq\":1,\"speaker\":\"agent\",\"text\":\"hello\"}]}}",
               "closed.transcript[1].seq", "must be greater than the previous seq 1, got 1");
  EXPECT_ERROR(HEAD "\"closed\":{\"transcript\":[{\"seq\":-1}]}}", "closed.transcript[0].seq",
               "must be an integer 0..4294967295, got -1");
  EXPECT_ERROR(HEAD "\"turn\":{\"seq\":1,\"text\":\"hi\"}}", "turn.speaker",
               "missing: must be one of customer, agent, bot");
  EXPECT_ERROR(HEAD "\"turn\":{\"seq\":1,\"speaker\":\"agent\",\"text\":\"hi\",\"offset_ms\":-1}}",
               "turn.offset_ms", "must be an integer 0..604800000, got -1");
  EXPECT_ERROR(HEAD "\"turn\":{\"seq\":1,\"speaker\":\"agent\",\"text\":7}}", "turn.text",
               "must be a string");
  /* A control character in an unknown key is not echoed raw. */
  EXPECT_ERROR("{\"a\\u0001b\":1}", "a?b", "unknown field");
}

static void test_whole_body_errors(void) {
  gw_event_batch b;
  CHECK_INT_EQ(parse("  \n ", GW_EVENT_FORMAT_AUTO, NULL, &b), -EINVAL);
  CHECK_INT_EQ(b.nerrors, 1);
  CHECK_STR_EQ(b.errors[0].reason, "empty body");
  gw_event_batch_free(&b);

  CHECK_INT_EQ(
      parse("{\n  \"tenant_id\": \"acme\",\n  \"team_id\": }", GW_EVENT_FORMAT_AUTO, NULL, &b),
      -EINVAL);
  CHECK_INT_EQ(b.nerrors, 1);
  CHECK_INT_EQ(b.nevents, 0);
  CHECK_INT_EQ(b.errors[0].line, 3);
  CHECK_STR_CONTAINS(b.errors[0].reason, "invalid JSON at line 3, column");
  gw_event_batch_free(&b);

  /* Duplicate keys would let one value silently win: refused. */
  CHECK_INT_EQ(parse("{\"tenant_id\":\"a\",\"tenant_id\":\"b\"}", GW_EVENT_FORMAT_JSON, NULL, &b),
               -EINVAL);
  CHECK_STR_CONTAINS(b.nerrors == 1 ? b.errors[0].reason : NULL, "duplicate");
  gw_event_batch_free(&b);

  /* An unpaired surrogate escape is not text. */
  CHECK_INT_EQ(parse(HEAD "\"turn\":{\"seq\":1,\"speaker\":\"agent\",\"text\":\"\\ud800\"}}",
                     GW_EVENT_FORMAT_JSON, NULL, &b),
               -EINVAL);
  gw_event_batch_free(&b);

  CHECK_INT_EQ(parse("[1, " HEAD CLOSED "}]", GW_EVENT_FORMAT_AUTO, NULL, &b), 0);
  CHECK_INT_EQ(b.nitems, 2);
  CHECK_INT_EQ(b.nevents, 1);
  CHECK_INT_EQ(b.nerrors, 1);
  if (b.nerrors == 1 && b.nevents == 1) {
    CHECK_INT_EQ(b.errors[0].index, 0);
    CHECK_STR_EQ(b.errors[0].reason, "must be a JSON object");
    CHECK_INT_EQ(b.event_index[0], 1);
  }
  gw_event_batch_free(&b);

  CHECK_INT_EQ(parse("[]", GW_EVENT_FORMAT_JSON, NULL, &b), 0);
  CHECK_INT_EQ(b.nitems, 0);
  gw_event_batch_free(&b);
}

/* Parses body as JSON and expects a whole-body syntax error whose reason contains want. */
static void expect_syntax(int line, const char *body, size_t len, gw_event_format fmt,
                          const char *want) {
  gw_event_batch b;
  int rc = gw_event_parse_json(body, len, fmt, NULL, T0, &b);
  bool ok;
  if (fmt == GW_EVENT_FORMAT_NDJSON) {
    /* NDJSON: the line's item is unreadable, the body is not. */
    ok = rc == 0 && b.nevents == 0 && b.nerrors == 1 && b.errors[0].field[0] == '\0' &&
         strstr(b.errors[0].reason, "invalid JSON at column") != NULL &&
         strstr(b.errors[0].reason, want) != NULL;
  } else {
    ok = rc == -EINVAL && b.nitems == 0 && b.nevents == 0 && b.nerrors == 1 &&
         strstr(b.errors[0].reason, "invalid JSON at line") != NULL &&
         strstr(b.errors[0].reason, want) != NULL;
  }
  if (!ok) {
    fprintf(stderr,
            "test_event.c:%d: expected a syntax error with \"%s\", got rc %d, %zu events, %zu "
            "errors%s%s\n",
            line, want, rc, b.nevents, b.nerrors, b.nerrors ? ", first: " : "",
            b.nerrors ? b.errors[0].reason : "");
    gw_test_failed_checks++;
  }
  gw_event_batch_free(&b);
}
#define EXPECT_SYNTAX(body, want)                                                                  \
  expect_syntax(__LINE__, body, strlen(body), GW_EVENT_FORMAT_JSON, want)

/* RFC 8259 strictness of the reader, seen through whole events (the reader's own grammar
 * tests are in test_json_reader.c). */
static void test_strict_json(void) {
  EXPECT_SYNTAX(HEAD CLOSED ",}", ""); /* trailing comma */
  EXPECT_SYNTAX(HEAD "\"closed\":{\"handle_ms\":01}}", "leading zero");
  EXPECT_SYNTAX(HEAD "\"closed\":{\"handle_ms\":1e400}}", "range of a double");
  EXPECT_SYNTAX("{\"occurred_at\":9223372036854775808}", "64-bit");
  EXPECT_SYNTAX(HEAD "\"turn\":{\"seq\":1,\"speaker\":\"agent\",\"text\":\"a\tb\"}}",
                "control character");
  EXPECT_SYNTAX(HEAD "\"turn\":{\"seq\":1,\"speaker\":\"agent\",\"text\":\"caf\xc3\"}}",
                "invalid UTF-8");
  EXPECT_SYNTAX(HEAD "\"turn\":{\"seq\":1,\"speaker\":\"agent\",\"text\":\"a\\u0000\"}}",
                "\\u0000");
  EXPECT_SYNTAX(HEAD "\"turn\":{\"seq\":1,\"speaker\":\"agent\",\"text\":\"\\udc00\"}}",
                "surrogate");
  /* The same key twice, once written with an escape. */
  EXPECT_SYNTAX("{\"tenant_id\":\"a\",\"tenant\\u005fid\":\"a\"}", "duplicate");
  static const char nul[] = "{\"tenant_id\":1\0}";
  expect_syntax(__LINE__, nul, sizeof(nul) - 1, GW_EVENT_FORMAT_JSON, "");

  /* A field error does not hide a syntax error later in the body: items are mapped as they
   * come, but the body must be JSON as a whole. */
  EXPECT_SYNTAX("[" HEAD "\"x\":1," CLOSED "}, " HEAD CLOSED "},]", "");
  EXPECT_SYNTAX("[" HEAD "\"x\":{\"a\":1,\"a\":2}," CLOSED "}]", "duplicate");
  expect_syntax(__LINE__, HEAD "\"x\":1," CLOSED "} 5", strlen(HEAD "\"x\":1," CLOSED "} 5"),
                GW_EVENT_FORMAT_NDJSON, "end of input");

  /* Nesting: deep enough to be refused even in a field nobody maps. */
  size_t n = 3000;
  char *deep = malloc(2 * n + 64);
  int o = snprintf(deep, 64, "{\"x\":");
  memset(deep + o, '[', n);
  memset(deep + o + n, ']', n);
  snprintf(deep + o + 2 * n, 64, "}");
  EXPECT_SYNTAX(deep, "deeper than 2048");
  free(deep);
  EXPECT_ERROR("{\"x\":[[[[[[[[[[]]]]]]]]]]}", "x", "unknown field");

  /* Escapes are decoded in keys and values alike. */
  gw_event_batch b;
  CHECK_INT_EQ(parse("{\"tenant\\u005fid\":\"ac\\u006de\",\"team_id\":\"billing\",\"agent_id\":"
                     "\"a\\u002d1\",\"interaction_id\":\"c-123\",\"channel\":\"v\\u006fice\"," WHEN
                     ",\"turn\":{\"seq\":1,\"speaker\":\"agent\",\"text\":\"\\ud83d\\ude00 "
                     "\\\"ok\\\"\\n\"}}",
                     GW_EVENT_FORMAT_JSON, NULL, &b),
               0);
  CHECK_INT_EQ(b.nevents, 1);
  if (b.nevents == 1) {
    CHECK_STR_EQ(b.events[0]->tenant_id, "acme");
    CHECK_STR_EQ(b.events[0]->agent_id, "a-1");
    CHECK_INT_EQ(b.events[0]->channel, GOODWILL__V1__CHANNEL__CHANNEL_VOICE);
    CHECK_STR_EQ(b.events[0]->turn->text, "\xf0\x9f\x98\x80 \"ok\"\n");
  }
  gw_event_batch_free(&b);

  /* Integers: -0 is 0; the 64-bit extremes are integers (and then out of range). */
  EXPECT_ERROR(HEAD "\"closed\":{\"handle_ms\":-0,\"wait_ms\":9223372036854775807}}",
               "closed.wait_ms", "must be an integer 0..604800000, got 9223372036854775807");
  EXPECT_ERROR(HEAD "\"closed\":{\"hold_ms\":-9223372036854775808}}", "closed.hold_ms",
               "must be an integer 0..604800000, got -9223372036854775808");
  EXPECT_ERROR(HEAD "\"closed\":{\"hold_ms\":1e2}}", "closed.hold_ms",
               "must be an integer 0..604800000");

  /* The number of turns is checked over the whole transcript, also after a bad turn; a
   * syntax error after the limit still counts. */
  gw_event_limits lim;
  gw_event_limits_default(&lim);
  lim.max_turns = 1;
  CHECK_INT_EQ(parse(HEAD "\"closed\":{\"transcript\":[{\"seq\":\"x\"},{},{}]}}",
                     GW_EVENT_FORMAT_JSON, &lim, &b),
               0);
  CHECK_STR_EQ(b.nerrors ? b.errors[0].field : NULL, "closed.transcript");
  CHECK_STR_EQ(b.nerrors ? b.errors[0].reason : NULL, "too many turns: 3, at most 1");
  gw_event_batch_free(&b);
  CHECK_INT_EQ(parse(HEAD "\"closed\":{\"transcript\":[{},{\"a\":1,\"a\":1}]}}",
                     GW_EVENT_FORMAT_JSON, &lim, &b),
               -EINVAL);
  gw_event_batch_free(&b);
  lim.max_turns = 3;
  CHECK_INT_EQ(parse(HEAD "\"closed\":{\"transcript\":[{\"seq\":\"x\"},{},{}]}}",
                     GW_EVENT_FORMAT_JSON, &lim, &b),
               0);
  CHECK_STR_EQ(b.nerrors ? b.errors[0].field : NULL, "closed.transcript[0].seq");
  gw_event_batch_free(&b);

  /* Too many events, but a syntax error at the end: the syntax error is what the body has. */
  gw_event_limits_default(&lim);
  lim.max_events = 2;
  CHECK_INT_EQ(parse("[{},{},{},}", GW_EVENT_FORMAT_JSON, &lim, &b), -EINVAL);
  CHECK_INT_EQ(b.nitems, 0);
  gw_event_batch_free(&b);
  CHECK_INT_EQ(parse("[" HEAD CLOSED "},{},{}]", GW_EVENT_FORMAT_JSON, &lim, &b), -E2BIG);
  CHECK_INT_EQ(b.nitems, 3);
  CHECK_INT_EQ(b.nevents, 0);
  CHECK_INT_EQ(b.nerrors, 1);
  gw_event_batch_free(&b);
}

static void test_ndjson_lines(void) {
  const char *body = HEAD CLOSED "}\n"                       /* 1: item 0 ok */
                                 "\n"                        /* 2: blank */
                                 "{not json\n"               /* 3: item 1 */
      HEAD "\"survey\":{\"likelihood_to_recommend\":9}}\r\n" /* 4: item 2 ok */
                                 "   \t\n"                   /* 5: blank */
      HEAD "\"x\":1," CLOSED "}\n"                           /* 6: item 3 */
                                 "[1]\n"                     /* 7: item 4 */
      HEAD "\"closed\":{\"handle_ms\":-1}}";                 /* 8: item 5 */
  for (int fmt = 0; fmt < 2; fmt++) {
    gw_event_batch b;
    CHECK_INT_EQ(parse(body, fmt == 0 ? GW_EVENT_FORMAT_NDJSON : GW_EVENT_FORMAT_AUTO, NULL, &b),
                 0);
    CHECK_INT_EQ(b.nitems, 6);
    CHECK_INT_EQ(b.nevents, 2);
    CHECK_INT_EQ(b.nerrors, 4);
    if (b.nevents == 2 && b.nerrors == 4) {
      CHECK_INT_EQ(b.event_index[0], 0);
      CHECK_INT_EQ(b.event_index[1], 2);
      CHECK_INT_EQ(b.events[1]->body_case, GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY);
      CHECK_INT_EQ(b.errors[0].index, 1);
      CHECK_INT_EQ(b.errors[0].line, 3);
      CHECK_STR_EQ(b.errors[0].field, "");
      CHECK_STR_CONTAINS(b.errors[0].reason, "invalid JSON at column");
      CHECK_INT_EQ(b.errors[1].index, 3);
      CHECK_INT_EQ(b.errors[1].line, 6);
      CHECK_STR_EQ(b.errors[1].field, "x");
      CHECK_STR_EQ(b.errors[1].reason, "unknown field");
      CHECK_INT_EQ(b.errors[2].index, 4);
      CHECK_INT_EQ(b.errors[2].line, 7);
      CHECK_STR_EQ(b.errors[2].reason, "must be a JSON object");
      CHECK_INT_EQ(b.errors[3].index, 5);
      CHECK_INT_EQ(b.errors[3].line, 8);
      CHECK_STR_EQ(b.errors[3].field, "closed.handle_ms");
    }
    gw_event_batch_free(&b);
  }

  /* AUTO reads a pretty-printed single object whole, not line by line. */
  gw_event_batch b;
  CHECK_INT_EQ(parse("{\n  " IDS ",\n  \"channel\": \"voice\",\n  " WHEN ",\n  " CLOSED "\n}\n",
                     GW_EVENT_FORMAT_AUTO, NULL, &b),
               0);
  CHECK_INT_EQ(b.nevents, 1);
  CHECK_INT_EQ(b.nerrors, 0);
  gw_event_batch_free(&b);
}

static void test_ids(void) {
  const char *body = HEAD CLOSED "}";
  gw_event_batch a, b, c, d;
  CHECK_INT_EQ(gw_event_parse_json(body, strlen(body), GW_EVENT_FORMAT_JSON, NULL, T0, &a), 0);
  /* A retry a second later: same content, so the same id although received_at differs. */
  CHECK_INT_EQ(gw_event_parse_json(body, strlen(body), GW_EVENT_FORMAT_JSON, NULL, T0 + 1000, &b),
               0);
  CHECK_INT_EQ(parse(HEAD "\"closed\":{\"handle_ms\":1001}}", GW_EVENT_FORMAT_JSON, NULL, &c), 0);
  CHECK_INT_EQ(parse("{\"event_id\":\"client-7\"," IDS ",\"channel\":\"voice\"," WHEN "," CLOSED
                     "}",
                     GW_EVENT_FORMAT_JSON, NULL, &d),
               0);
  if (a.nevents == 1 && b.nevents == 1 && c.nevents == 1 && d.nevents == 1) {
    CHECK_INT_EQ(strlen(a.events[0]->event_id), 32);
    CHECK_INT_EQ(strspn(a.events[0]->event_id, "0123456789abcdef"), 32);
    CHECK_STR_EQ(a.events[0]->event_id, b.events[0]->event_id);
    CHECK(strcmp(a.events[0]->event_id, c.events[0]->event_id) != 0);
    CHECK_STR_EQ(d.events[0]->event_id, "client-7");

    /* The same content built as a protobuf struct gets the same id. */
    Goodwill__V1__InteractionEvent ev = *a.events[0];
    ev.event_id = (char *)protobuf_c_empty_string;
    ev.received_at_ms = 42;
    char id[33];
    gw_event_assign_id(&ev, id);
    CHECK_STR_EQ(ev.event_id, a.events[0]->event_id);
  } else {
    CHECK(0 && "every body must give one event");
  }
  gw_event_batch_free(&a);
  gw_event_batch_free(&b);
  gw_event_batch_free(&c);
  gw_event_batch_free(&d);
}

static void test_limits(void) {
  gw_event_limits lim;
  gw_event_limits_default(&lim);
  CHECK_INT_EQ(lim.max_events, 10000);
  CHECK_INT_EQ(lim.max_text_bytes, 16384);
  lim.max_events = 2;
  gw_event_batch b;
  CHECK_INT_EQ(parse("[{},{},{}]", GW_EVENT_FORMAT_AUTO, &lim, &b), -E2BIG);
  CHECK_INT_EQ(b.nevents, 0);
  CHECK_INT_EQ(b.nerrors, 1);
  CHECK_STR_EQ(b.nerrors ? b.errors[0].reason : NULL, "too many events: 3, at most 2");
  gw_event_batch_free(&b);
  CHECK_INT_EQ(parse("{}\n\n{}\n{}\n{}\n", GW_EVENT_FORMAT_NDJSON, &lim, &b), -E2BIG);
  CHECK_INT_EQ(b.nerrors, 1);
  CHECK_INT_EQ(b.nerrors ? b.errors[0].line : 0, 4);
  CHECK_STR_EQ(b.nerrors ? b.errors[0].reason : NULL, "too many events: 4, at most 2");
  gw_event_batch_free(&b);
  CHECK_INT_EQ(parse("{}\n\n{}\n", GW_EVENT_FORMAT_NDJSON, &lim, &b), 0);
  CHECK_INT_EQ(b.nerrors, 2);
  gw_event_batch_free(&b);

  gw_event_limits_default(&lim);
  lim.max_turns = 1;
  CHECK_INT_EQ(parse(HEAD "\"closed\":{\"transcript\":[{},{}]}}", GW_EVENT_FORMAT_JSON, &lim, &b),
               0);
  CHECK_STR_EQ(b.nerrors ? b.errors[0].field : NULL, "closed.transcript");
  CHECK_STR_EQ(b.nerrors ? b.errors[0].reason : NULL, "too many turns: 2, at most 1");
  gw_event_batch_free(&b);

  gw_event_limits_default(&lim);
  lim.max_text_bytes = 4;
  CHECK_INT_EQ(parse(HEAD "\"turn\":{\"seq\":1,\"speaker\":\"agent\",\"text\":\"hello\"}}",
                     GW_EVENT_FORMAT_JSON, &lim, &b),
               0);
  CHECK_STR_EQ(b.nerrors ? b.errors[0].field : NULL, "turn.text");
  CHECK_STR_EQ(b.nerrors ? b.errors[0].reason : NULL, "too long: 5 bytes, at most 4");
  gw_event_batch_free(&b);

  gw_event_limits_default(&lim);
  lim.max_id_bytes = 3;
  CHECK_INT_EQ(parse(HEAD CLOSED "}", GW_EVENT_FORMAT_JSON, &lim, &b), 0);
  CHECK_STR_EQ(b.nerrors ? b.errors[0].field : NULL, "tenant_id");
  CHECK_STR_EQ(b.nerrors ? b.errors[0].reason : NULL, "too long: 4 bytes, at most 3");
  gw_event_batch_free(&b);
}

/*
 * The hard bounds of goodwill/event.h are what every stage accepts: an 8-day handle time (the
 * aggregator's 2^53 bound is 7 days) is refused here, naming the field and the limit, instead
 * of being accepted and dead-lettered downstream; a text of exactly the hard bound passes;
 * limits looser than the bounds do not loosen the validation, and gw_event_limits_check says
 * which limit is too loose.
 */
static void test_hard_bounds(void) {
  CHECK_INT_EQ(GW_EVENT_MAX_DURATION_MS, 7LL * 86400 * 1000);
  EXPECT_ERROR(HEAD "\"closed\":{\"handle_ms\":691200000}}", "closed.handle_ms",
               "must be an integer 0..604800000, got 691200000");
  gw_event_batch b;
  CHECK_INT_EQ(parse(HEAD "\"closed\":{\"handle_ms\":604800000,\"wait_ms\":604800000}}",
                     GW_EVENT_FORMAT_JSON, NULL, &b),
               0);
  CHECK_INT_EQ(b.nevents, 1);
  gw_event_batch_free(&b);

  /* The same through protobuf validation (a Kafka producer's event). */
  Goodwill__V1__InteractionEvent ev = GOODWILL__V1__INTERACTION_EVENT__INIT;
  Goodwill__V1__InteractionClosed cl = GOODWILL__V1__INTERACTION_CLOSED__INIT;
  ev.event_id = "e-8d";
  ev.tenant_id = "acme";
  ev.team_id = "billing";
  ev.agent_id = "a-17";
  ev.interaction_id = "c-8d";
  ev.channel = GOODWILL__V1__CHANNEL__CHANNEL_VOICE;
  ev.occurred_at_ms = T0;
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
  ev.closed = &cl;
  cl.handle_ms = 8ULL * 86400 * 1000;
  gw_event_limits hard;
  gw_event_limits_hard(&hard);
  gw_event_error err;
  CHECK_INT_EQ(gw_event_validate(&ev, &hard, T0, &err), -EINVAL);
  CHECK_STR_EQ(err.field, "closed.handle_ms");
  CHECK_STR_EQ(err.reason, "must be an integer 0..604800000, got 691200000");

  /* A text of exactly GW_EVENT_MAX_TEXT_BYTES passes; one byte more does not, even with a
   * looser limit given. */
  char *text = malloc(GW_EVENT_MAX_TEXT_BYTES + 2);
  memset(text, 'a', GW_EVENT_MAX_TEXT_BYTES + 1);
  text[GW_EVENT_MAX_TEXT_BYTES] = '\0';
  Goodwill__V1__Turn turn = GOODWILL__V1__TURN__INIT;
  turn.speaker = GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER;
  turn.text = text;
  ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_TURN;
  ev.turn = &turn;
  CHECK_INT_EQ(gw_event_validate(&ev, &hard, T0, &err), 0);
  text[GW_EVENT_MAX_TEXT_BYTES] = 'a';
  text[GW_EVENT_MAX_TEXT_BYTES + 1] = '\0';
  gw_event_limits loose;
  gw_event_limits_default(&loose);
  loose.max_text_bytes = 1 << 20;
  loose.max_past_ms = INT64_MAX / 4;
  CHECK_INT_EQ(gw_event_validate(&ev, &loose, T0, &err), -EINVAL);
  CHECK_STR_EQ(err.field, "turn.text");
  CHECK_STR_EQ(err.reason, "too long: 16385 bytes, at most 16384");
  turn.text = "hello";
  ev.occurred_at_ms = T0 - GW_EVENT_MAX_PAST_MS - 1;
  CHECK_INT_EQ(gw_event_validate(&ev, &loose, T0, &err), -EINVAL);
  CHECK_STR_EQ(err.field, "occurred_at");
  free(text);

  /* The defaults are the hard bounds; looser limits are named by gw_event_limits_check. */
  gw_event_limits lim;
  gw_event_limits_default(&lim);
  char why[256] = "";
  CHECK_INT_EQ(gw_event_limits_check(&lim, why, sizeof(why)), 0);
  CHECK_INT_EQ(lim.max_text_bytes, GW_EVENT_MAX_TEXT_BYTES);
  CHECK_INT_EQ(lim.max_turns, GW_EVENT_MAX_TURNS);
  CHECK_INT_EQ(lim.max_past_ms, GW_EVENT_MAX_PAST_MS);
  lim.max_text_bytes = GW_EVENT_MAX_TEXT_BYTES + 1;
  CHECK_INT_EQ(gw_event_limits_check(&lim, why, sizeof(why)), -EINVAL);
  CHECK_STR_CONTAINS(why, "max_text_bytes is 16385: it must be 1..16384");
  gw_event_limits_default(&lim);
  lim.max_turns = 100000;
  CHECK_INT_EQ(gw_event_limits_check(&lim, why, sizeof(why)), -EINVAL);
  CHECK_STR_CONTAINS(why, "max_turns is 100000: it must be 1..2000");
  gw_event_limits_default(&lim);
  lim.max_text_bytes = 64; /* tighter is fine */
  CHECK_INT_EQ(gw_event_limits_check(&lim, why, sizeof(why)), 0);
}

/* Parses an event whose occurred_at is the given JSON value; returns occurred_at_ms or -1. */
static long long time_of(const char *value, const char **reason_out) {
  static char reason[192];
  char body[512];
  snprintf(body, sizeof(body), "{" IDS ",\"channel\":\"voice\",\"occurred_at\":%s," CLOSED "}",
           value);
  gw_event_batch b;
  long long r = -1;
  reason[0] = '\0';
  if (parse(body, GW_EVENT_FORMAT_JSON, NULL, &b) == 0 && b.nevents == 1) {
    r = b.events[0]->occurred_at_ms;
  } else if (b.nerrors > 0) {
    snprintf(reason, sizeof(reason), "%s", b.errors[0].reason);
  }
  gw_event_batch_free(&b);
  if (reason_out != NULL) {
    *reason_out = reason;
  }
  return r;
}

static void test_timestamps(void) {
  CHECK_INT_EQ(time_of("\"2026-11-23T10:00:00Z\"", NULL), T0);
  CHECK_INT_EQ(time_of("\"2026-11-23t10:00:00z\"", NULL), T0);
  CHECK_INT_EQ(time_of("\"2026-11-23T09:59:59.5Z\"", NULL), T0 - 500);
  CHECK_INT_EQ(time_of("\"2026-11-23T09:59:59.123456789Z\"", NULL), T0 - 877);
  CHECK_INT_EQ(time_of("\"2026-11-23T12:30:00+02:30\"", NULL), T0);
  CHECK_INT_EQ(time_of("\"2026-11-23T04:00:00-06:00\"", NULL), T0);
  CHECK_INT_EQ(time_of("\"2026-11-23T09:59:00.250+00:00\"", NULL), T0 - 59750);
  CHECK_INT_EQ(time_of("1795427999000", NULL), T0 - 1000);
  /* A leap day exists in 2024 and is well inside the 371-day past limit of T0. */
  CHECK_INT_EQ(time_of("\"2026-01-01T00:00:00Z\"", NULL), 1767225600000LL);

  const char *reason;
  /* Exactly at the future limit is accepted; one millisecond later is not. The reference is
   * the time the event was received (here: parsed, T0). */
  CHECK_INT_EQ(time_of("1795428300000", NULL), T0 + 300000);
  CHECK_INT_EQ(time_of("1795428300001", &reason), -1);
  CHECK_STR_EQ(reason, "too far in the future: more than 300000 ms after it was received");
  CHECK_INT_EQ(time_of("\"2026-11-23T10:10:00+00:00\"", &reason), -1);
  CHECK_STR_EQ(reason, "too far in the future: more than 300000 ms after it was received");
  /* The past limit is GW_EVENT_MAX_PAST_MS, 371 days: 2025-11-17T10:00:00Z for T0. */
  CHECK_INT_EQ(GW_EVENT_MAX_PAST_MS, 371LL * 86400 * 1000);
  CHECK_INT_EQ(time_of("\"2025-11-17T09:59:59Z\"", &reason), -1);
  CHECK_STR_EQ(reason, "too far in the past: more than 32054400000 ms (371 days) before it was "
                       "received");
  CHECK_INT_EQ(time_of("\"2025-11-17T10:00:00Z\"", NULL), T0 - 32054400000LL);
  CHECK_INT_EQ(time_of("-5", &reason), -1);
  CHECK_STR_EQ(reason, "too far in the past: more than 32054400000 ms (371 days) before it was "
                       "received");
  CHECK_INT_EQ(time_of("9223372036854775807", &reason), -1);
  CHECK_STR_EQ(reason, "too far in the future: more than 300000 ms after it was received");
}

/* A valid survey event built directly as protobuf, as a Kafka producer would send it. */
typedef struct proto_event {
  Goodwill__V1__InteractionEvent ev;
  Goodwill__V1__SurveyResponse survey;
} proto_event;

static void proto_event_init(proto_event *p) {
  goodwill__v1__interaction_event__init(&p->ev);
  goodwill__v1__survey_response__init(&p->survey);
  p->ev.event_id = "e-1";
  p->ev.tenant_id = "acme";
  p->ev.team_id = "billing";
  p->ev.agent_id = "a-17";
  p->ev.interaction_id = "c-123";
  p->ev.channel = GOODWILL__V1__CHANNEL__CHANNEL_VOICE;
  p->ev.occurred_at_ms = T0;
  p->ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
  p->ev.survey = &p->survey;
  p->survey.likelihood_presence_case =
      GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE_LIKELIHOOD_TO_RECOMMEND;
  p->survey.likelihood_to_recommend = 10;
}

static void expect_invalid(int line, const proto_event *p, const char *field, const char *reason) {
  gw_event_limits lim;
  gw_event_limits_default(&lim);
  gw_event_error err;
  int rc = gw_event_validate(&p->ev, &lim, T0, &err);
  if (rc != -EINVAL || strcmp(err.field, field) != 0 || strcmp(err.reason, reason) != 0) {
    fprintf(stderr, "test_event.c:%d: expected -EINVAL [%s] %s, got %d [%s] %s\n", line, field,
            reason, rc, rc ? err.field : "", rc ? err.reason : "");
    gw_test_failed_checks++;
  }
}
#define EXPECT_INVALID(p, field, reason) expect_invalid(__LINE__, p, field, reason)

static void test_validate_protobuf(void) {
  gw_event_limits lim;
  gw_event_limits_default(&lim);
  gw_event_error err;
  proto_event p;
  proto_event_init(&p);
  CHECK_INT_EQ(gw_event_validate(&p.ev, &lim, T0, &err), 0);

  p.ev.event_id = (char *)protobuf_c_empty_string;
  EXPECT_INVALID(&p, "event_id", "missing or empty");
  proto_event_init(&p);
  p.ev.channel = GOODWILL__V1__CHANNEL__CHANNEL_UNSPECIFIED;
  EXPECT_INVALID(&p, "channel", "missing: must be one of voice, chat, email, messaging, social");
  p.ev.channel = (Goodwill__V1__Channel)9;
  EXPECT_INVALID(&p, "channel", "must be one of voice, chat, email, messaging, social, got 9");
  proto_event_init(&p);
  p.survey.likelihood_presence_case = GOODWILL__V1__SURVEY_RESPONSE__LIKELIHOOD_PRESENCE__NOT_SET;
  EXPECT_INVALID(&p, "survey.likelihood_to_recommend", "missing: must be an integer 0..10");
  proto_event_init(&p);
  p.survey.likelihood_to_recommend = 11;
  EXPECT_INVALID(&p, "survey.likelihood_to_recommend", "must be an integer 0..10, got 11");
  proto_event_init(&p);
  p.ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY__NOT_SET;
  EXPECT_INVALID(&p, "", "missing body: one of closed, survey, turn");

  Goodwill__V1__Turn turn;
  goodwill__v1__turn__init(&turn);
  turn.text = "hello";
  proto_event_init(&p);
  p.ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_TURN;
  p.ev.turn = &turn;
  EXPECT_INVALID(&p, "turn.speaker", "missing: must be one of customer, agent, bot");
  turn.speaker = (Goodwill__V1__Speaker)7;
  EXPECT_INVALID(&p, "turn.speaker", "must be one of customer, agent, bot, got 7");
  turn.speaker = GOODWILL__V1__SPEAKER__SPEAKER_AGENT;
  CHECK_INT_EQ(gw_event_validate(&p.ev, &lim, T0, &err), 0);
  turn.offset_ms = (uint64_t)GW_EVENT_MAX_DURATION_MS + 1;
  EXPECT_INVALID(&p, "turn.offset_ms", "must be an integer 0..604800000, got 604800001");

  Goodwill__V1__InteractionClosed closed;
  goodwill__v1__interaction_closed__init(&closed);
  Goodwill__V1__Turn t0, t1;
  goodwill__v1__turn__init(&t0);
  goodwill__v1__turn__init(&t1);
  t0.seq = 5;
  t0.speaker = t1.speaker = GOODWILL__V1__SPEAKER__SPEAKER_CUSTOMER;
  t0.text = t1.text = "hi";
  t1.seq = 4;
  Goodwill__V1__Turn *turns[] = {&t0, &t1};
  closed.transcript = turns;
  closed.n_transcript = 2;
  proto_event_init(&p);
  p.ev.body_case = GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
  p.ev.closed = &closed;
  EXPECT_INVALID(&p, "closed.transcript[1].seq", "must be greater than the previous seq 5, got 4");
  t1.seq = 6;
  CHECK_INT_EQ(gw_event_validate(&p.ev, &lim, T0, &err), 0);
  closed.transfers = 5000;
  EXPECT_INVALID(&p, "closed.transfers", "must be an integer 0..1000, got 5000");
}

static void test_utf8(void) {
  static const struct {
    const char *text;
    long bad_at; /* -1: valid */
  } cases[] = {
      {"plain ascii", -1},
      {"caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf", -1}, /* é ☕ 😀 U+10FFFF */
      {"\xed\x9f\xbf ok", -1},                                            /* U+D7FF */
      {"a\xc0\x80", 1},                                                   /* overlong NUL */
      {"ab\xc1\xbf", 2},                                                  /* overlong 2-byte */
      {"\xe0\x80\x80", 0},                                                /* overlong 3-byte */
      {"x\xe0\x9f\xbf", 1},                                               /* overlong U+07FF */
      {"\xf0\x80\x80\x80", 0},                                            /* overlong 4-byte */
      {"\xf0\x8f\xbf\xbf", 0},                                            /* overlong U+FFFF */
      {"s\xed\xa0\x80", 1},                                               /* surrogate U+D800 */
      {"s\xed\xbf\xbf", 1},                                               /* surrogate U+DFFF */
      {"\xf4\x90\x80\x80", 0},                                            /* above U+10FFFF */
      {"\xf5\x80\x80\x80", 0},                                            /* never a lead byte */
      {"abc\x80", 3},                                                     /* stray continuation */
      {"caf\xc3", 3},                                                     /* cut at the end */
      {"\xe2\x98 x", 0},                                                  /* cut in the middle */
      {"\xff", 0},                                                        /* never valid */
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    proto_event p;
    proto_event_init(&p);
    p.survey.comment = (char *)cases[i].text;
    if (cases[i].bad_at < 0) {
      gw_event_limits lim;
      gw_event_limits_default(&lim);
      gw_event_error err;
      int rc = gw_event_validate(&p.ev, &lim, T0, &err);
      if (rc != 0) {
        fprintf(stderr, "utf8 case %zu: expected valid, got %s\n", i, err.reason);
      }
      CHECK_INT_EQ(rc, 0);
    } else {
      char reason[64];
      snprintf(reason, sizeof(reason), "invalid UTF-8 at byte %ld", cases[i].bad_at);
      EXPECT_INVALID(&p, "survey.comment", reason);
    }
  }
}

static void test_roundtrip(void) {
  const char *body = HEAD "\"closed\":{\"handle_ms\":5,\"resolved\":true,\"transcript\":["
                          "{\"seq\":0,\"speaker\":\"customer\",\"text\":\"still not working\"},"
                          "{\"seq\":1,\"speaker\":\"agent\",\"text\":\"Let me check.\","
                          "\"offset_ms\":1500}]}}";
  gw_event_batch b;
  CHECK_INT_EQ(parse(body, GW_EVENT_FORMAT_JSON, NULL, &b), 0);
  CHECK_INT_EQ(b.nevents, 1);
  if (b.nevents != 1) {
    gw_event_batch_free(&b);
    return;
  }
  gw_buf key = GW_BUF_INIT, packed = GW_BUF_INIT;
  gw_event_kafka_key(b.events[0], &key);
  CHECK_STR_EQ(key.data, "acme/c-123");
  gw_event_pack(b.events[0], &packed);
  CHECK(packed.len > 0);
  Goodwill__V1__InteractionEvent *u =
      goodwill__v1__interaction_event__unpack(NULL, packed.len, (const uint8_t *)packed.data);
  CHECK(u != NULL);
  if (u != NULL) {
    gw_event_limits lim;
    gw_event_limits_default(&lim);
    gw_event_error err;
    CHECK_INT_EQ(gw_event_validate(u, &lim, T0, &err), 0);
    CHECK_STR_EQ(u->event_id, b.events[0]->event_id);
    CHECK_STR_EQ(u->interaction_id, "c-123");
    CHECK_INT_EQ(u->occurred_at_ms, T0);
    CHECK_INT_EQ(u->received_at_ms, T0);
    CHECK_INT_EQ(u->body_case, GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED);
    CHECK_INT_EQ(u->closed->handle_ms, 5);
    CHECK_INT_EQ(u->closed->resolved_presence_case,
                 GOODWILL__V1__INTERACTION_CLOSED__RESOLVED_PRESENCE_RESOLVED);
    CHECK_INT_EQ(u->closed->resolved, 1);
    CHECK_INT_EQ(u->closed->n_transcript, 2);
    if (u->closed->n_transcript == 2) {
      CHECK_STR_EQ(u->closed->transcript[0]->text, "still not working");
      CHECK_INT_EQ(u->closed->transcript[1]->offset_ms, 1500);
      CHECK_INT_EQ(u->closed->transcript[1]->speaker, GOODWILL__V1__SPEAKER__SPEAKER_AGENT);
    }
    /* Re-packing the unpacked event gives the same bytes. */
    gw_buf again = GW_BUF_INIT;
    gw_event_pack(u, &again);
    CHECK(again.len == packed.len && memcmp(again.data, packed.data, packed.len) == 0);
    gw_buf_free(&again);
    goodwill__v1__interaction_event__free_unpacked(u, NULL);
  }
  CHECK_STR_EQ(gw_event_channel_name(GOODWILL__V1__CHANNEL__CHANNEL_SOCIAL), "social");
  CHECK(gw_event_channel_name((Goodwill__V1__Channel)6) == NULL);
  CHECK_STR_EQ(gw_event_speaker_name(GOODWILL__V1__SPEAKER__SPEAKER_BOT), "bot");
  Goodwill__V1__Speaker sp;
  CHECK_INT_EQ(gw_event_speaker_parse("Agent", &sp), -EINVAL);
  gw_buf_free(&key);
  gw_buf_free(&packed);
  gw_event_batch_free(&b);
}

/* Runs goodwill-gen and returns its whole stdout (caller frees), or NULL. */
static char *run_gen(const char *args, size_t *len) {
  const char *dir = getenv("GW_BUILD_DIR");
  if (dir == NULL) {
    fprintf(stderr, "GW_BUILD_DIR is not set: run through ctest\n");
    return NULL;
  }
  char cmd[1024];
  snprintf(cmd, sizeof(cmd), "%s/goodwill-gen %s", dir, args);
  FILE *f = popen(cmd, "r");
  if (f == NULL) {
    return NULL;
  }
  gw_buf out = GW_BUF_INIT;
  char chunk[65536];
  size_t n;
  while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
    gw_buf_append(&out, chunk, n);
  }
  int status = pclose(f);
  if (status != 0) {
    fprintf(stderr, "'%s' exited with status %d (is goodwill-gen built?)\n", cmd, status);
    gw_buf_free(&out);
    return NULL;
  }
  *len = out.len;
  return out.data;
}

static void test_gen_output(void) {
  const long long end_ms = T0;
  char args[256];
  snprintf(args, sizeof(args),
           "--seed 42 --interactions 400 --teams 6 --tenant demo --survey-rate 0.45 --span 6h "
           "--end %lld",
           end_ms);
  size_t len1 = 0, len2 = 0, len3 = 0;
  char *a = run_gen(args, &len1);
  char *b = run_gen(args, &len2);
  char *c = run_gen("--seed 43 --interactions 400 --teams 6 --tenant demo --end "
                    "1795428000000",
                    &len3);
  CHECK(a != NULL && b != NULL && c != NULL);
  if (a != NULL && b != NULL && c != NULL) {
    CHECK(len1 == len2 && memcmp(a, b, len1) == 0);
    CHECK(len1 != len3 || memcmp(a, c, len1) != 0);
    gw_event_batch batch;
    CHECK_INT_EQ(gw_event_parse_json(a, len1, GW_EVENT_FORMAT_NDJSON, NULL, end_ms, &batch), 0);
    CHECK_INT_EQ(batch.nerrors, 0);
    if (batch.nerrors > 0) {
      fprintf(stderr, "first error: line %zu [%s] %s\n", batch.errors[0].line,
              batch.errors[0].field, batch.errors[0].reason);
    }
    size_t closed = 0, surveys = 0, explicit_ids = 0;
    for (size_t i = 0; i < batch.nevents; i++) {
      const Goodwill__V1__InteractionEvent *ev = batch.events[i];
      closed += ev->body_case == GOODWILL__V1__INTERACTION_EVENT__BODY_CLOSED;
      surveys += ev->body_case == GOODWILL__V1__INTERACTION_EVENT__BODY_SURVEY;
      explicit_ids += strncmp(ev->event_id, "demo-42-", 8) == 0;
      CHECK(ev->occurred_at_ms <= end_ms && ev->occurred_at_ms >= end_ms - 6 * 3600 * 1000 - 1);
    }
    CHECK_INT_EQ(closed, 400);
    /* 45% of 400 is 180; a seeded binomial stays well within these bounds. */
    CHECK(surveys > 130 && surveys < 230);
    CHECK_INT_EQ(explicit_ids, batch.nevents);
    gw_event_batch_free(&batch);
  }
  free(a);
  free(b);
  free(c);
}

int main(void) {
  GW_RUN(test_full_example);
  GW_RUN(test_field_errors);
  GW_RUN(test_whole_body_errors);
  GW_RUN(test_strict_json);
  GW_RUN(test_ndjson_lines);
  GW_RUN(test_ids);
  GW_RUN(test_limits);
  GW_RUN(test_hard_bounds);
  GW_RUN(test_timestamps);
  GW_RUN(test_validate_protobuf);
  GW_RUN(test_utf8);
  GW_RUN(test_roundtrip);
  GW_RUN(test_gen_output);
  return gw_test_finish();
}
