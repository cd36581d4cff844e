/*
 * goodwill-gen: seeded sample data. Writes NDJSON InteractionEvents (the schema of
 * docs/API.md) to stdout: one InteractionClosed per interaction with a transcript whose
 * feeling follows a trajectory (angry -> calm, confused -> relieved, neutral -> angry, ...),
 * realistic facts, and for about --survey-rate of them a SurveyResponse a few minutes later
 * whose score follows the trajectory. Teams have a stable personality (some handle customers
 * better than others), so aggregates over the output differ by team.
 *
 * Every customer has an answer, surveyed or not: --truth-file writes it for every interaction,
 * so that estimates of the whole population's NPS can be checked against the truth. Who
 * answers is --response-bias: "none" (each customer answers with probability --survey-rate)
 * or "extremes" (the delighted and the angry answer more often, as in real surveys: the
 * probability is --survey-rate times a weight of the answer, 1.6 for 0-4, 0.8 for 5-6, 0.5
 * for 7-8 and 1.4 for 9-10, at most 1).
 *
 * Deterministic: the same flags give the same bytes (own PRNG, no rand(), no clock unless
 * --end is left at "now"). With --response-bias none the events do not depend on
 * --truth-file (the answers of customers who are not surveyed come from a stream of their
 * own). Flags through gw_config, like the daemons; the environment is not
 * read, so GOODWILL_* variables exported for the daemons do not disturb it.
 */
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "goodwill/buf.h"
#include "goodwill/config.h"
#include "goodwill/version.h"

typedef struct gen_config {
  long long seed;
  long long interactions;
  long long teams;
  long long agents;
  char *tenant;
  char *survey_rate;
  long long span_ms;
  long long end_ms;
  char *truth_file;
  char *response_bias;
} gen_config;

static const gw_config_key gen_keys[] = {
    {"seed", GW_CONF_INT, "1", 0, 9000000000000000000LL, offsetof(gen_config, seed),
     "PRNG seed: the same seed and flags give the same output"},
    {"interactions", GW_CONF_INT, "1000", 0, 100000000, offsetof(gen_config, interactions),
     "number of interactions (one InteractionClosed each)"},
    {"teams", GW_CONF_INT, "10", 1, 100000, offsetof(gen_config, teams),
     "number of teams, named team-01, team-02, ..."},
    {"agents", GW_CONF_INT, "8", 1, 999, offsetof(gen_config, agents), "agents per team"},
    {"tenant", GW_CONF_STRING, "demo", 1, 0, offsetof(gen_config, tenant), "tenant id"},
    {"survey-rate", GW_CONF_STRING, "0.45", 0, 0, offsetof(gen_config, survey_rate),
     "share of interactions answered by a survey, 0..1"},
    {"span", GW_CONF_DURATION, "6h", 1000, 365LL * 24 * 3600 * 1000, offsetof(gen_config, span_ms),
     "interactions are spread over this period, ending at --end"},
    {"end", GW_CONF_INT, "0", 0, 253402300799999LL, offsetof(gen_config, end_ms),
     "end of the period in Unix epoch ms; 0 means now"},
    {"truth-file", GW_CONF_STRING, "", 0, 0, offsetof(gen_config, truth_file),
     "write every customer's answer (surveyed or not) to this file, one JSON line per "
     "interaction; empty: none"},
    {"response-bias", GW_CONF_STRING, "none", 1, 0, offsetof(gen_config, response_bias),
     "who answers surveys: none (every customer alike) or extremes (the delighted and the "
     "angry more often)"},
};

/* ---- PRNG: xoshiro256** seeded through splitmix64 (Blackman and Vigna, prng.di.unimi.it;
 * both public domain algorithms, written here from their description). ---- */

typedef struct gen_rng {
  uint64_t s[4];
} gen_rng;

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static void rng_seed(gen_rng *r, uint64_t seed) {
  uint64_t x = seed;
  for (int i = 0; i < 4; i++) {
    r->s[i] = splitmix64(&x);
  }
}

static uint64_t rotl(uint64_t x, int k) {
  return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(gen_rng *r) {
  uint64_t *s = r->s;
  uint64_t result = rotl(s[1] * 5, 7) * 9;
  uint64_t t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return result;
}

/* Uniform in [0, 1), from the top 53 bits. */
static double rng_unit(gen_rng *r) {
  return (double)(rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [lo, hi]. The modulo bias is below 2^-40 for these small ranges. */
static long long rng_range(gen_rng *r, long long lo, long long hi) {
  return lo + (long long)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

static const char *rng_pick(gen_rng *r, const char *const *pool, size_t n) {
  return pool[rng_next(r) % n];
}
#define PICK(r, pool) rng_pick((r), (pool), sizeof(pool) / sizeof((pool)[0]))

/* ---- what customers and agents say (no characters that need JSON escaping) ---- */

static const char *const angry_open[] = {
    "This is the third time calling about the same problem.",
    "I am furious, my internet is STILL not working!",
    "Why was I charged twice? This is ridiculous.",
    "I have been on hold for forty minutes, this is unacceptable.",
    "Nobody ever calls back. I want to cancel my contract.",
    "Your app keeps crashing and I am sick of it!!",
    "I was promised a refund last week and nothing happened. Again.",
};
static const char *const frustrated_open[] = {
    "Still not working after the update, again.",
    "I have tried everything you told me and it keeps failing.",
    "This is getting really frustrating, second time this week.",
    "The technician never showed up and I took the day off for it.",
};
static const char *const confused_open[] = {
    "I do not understand this bill at all.",
    "I am confused, the app says my payment failed but the money is gone?",
    "Sorry, I am not sure how to reset my password.",
    "Can you explain what this fee is? I really do not get it.",
};
static const char *const anxious_open[] = {
    "I am really worried, I think my account was hacked.",
    "I am afraid I will be charged a late fee, can you help?",
    "I am nervous about this payment, it has not arrived yet.",
    "Please help, my card was declined and I need it today.",
};
static const char *const neutral_open[] = {
    "Hi, I am calling about my account.",
    "Hello, I need to change my delivery date.",
    "Hi, I have a question about my contract.",
    "Good morning, I would like to check my order status.",
};
static const char *const happy_open[] = {
    "Hi! I just wanted to upgrade my plan.",
    "Hello, quick question about my order, love the product by the way.",
    "Hi there, hope you are well, I need to update my address.",
    "Great service so far, I just need one more thing :)",
};
static const char *const calm_close[] = {
    "Okay, that makes sense now.",
    "Alright, thanks for sorting it out.",
    "Fine, I appreciate you fixing it.",
    "Good, that is what I needed.",
    "Ok thank you, I feel better about this.",
};
static const char *const relieved_close[] = {
    "Oh, that fixed it, thank you so much!",
    "Phew, what a relief, it works now.",
    "Thank you, that finally makes sense.",
    "Great, I was so worried, thanks for explaining.",
};
static const char *const reassured_close[] = {
    "Okay, I feel much better now, thank you.",
    "Thanks for reassuring me, that helps a lot.",
    "Good to know my money is safe, thank you.",
};
static const char *const grateful_close[] = {
    "Wow, thank you so much, that fixed it!",
    "You are a star, best support I have ever had.",
    "Amazing, thank you for going the extra mile!",
};
static const char *const happy_close[] = {
    "Perfect, thank you so much!",
    "Awesome, you have been super helpful :)",
    "Brilliant, thanks a lot, have a great day!",
    "That was quick, really appreciate it!",
};
static const char *const neutral_close[] = {
    "Okay, thanks.",
    "Alright, bye.",
    "Fine, I will wait for the email then.",
    "Ok, noted.",
};
static const char *const angry_close[] = {
    "It is still not working and I want to speak to a manager.",
    "Forget it, I will take my business elsewhere.",
    "So you cannot help me at all? Unbelievable.",
    "I am cancelling, this was a complete waste of my time.",
    "This is useless. Third time calling and nothing is fixed.",
};
static const char *const middle_calm[] = {
    "My account number is on the letter.",
    "I tried restarting it twice.",
    "It started on Monday.",
    "Yes, that is the right email.",
    "I am using the mobile app.",
    "The order number is in the confirmation email.",
};
static const char *const middle_tense[] = {
    "Seriously? I already did that.",
    "I have explained this three times already.",
    "How long is this going to take?",
    "That is not what the last agent told me.",
};
static const char *const agent_greeting[] = {
    "Thanks for calling, my name is Sam, how can I help?",
    "Hi, thanks for reaching out, I am happy to help.",
    "Good morning, you are speaking with Priya, what can I do for you?",
};
static const char *const agent_empathy[] = {
    "I am so sorry about that, I completely understand how frustrating this is.",
    "I apologize for the trouble, let me take care of it right now.",
    "I understand, that must be really stressful.",
    "Thank you for your patience, I will make sure this gets fixed.",
    "I am sorry you had to call again, that should not happen.",
};
static const char *const agent_action[] = {
    "Let me check your account.",
    "I can see the issue here.",
    "I have reset your connection from our side.",
    "I have issued the refund, it will show in three to five days.",
    "Could you confirm the email on the account?",
    "I have escalated this to our technical team.",
};
static const char *const agent_cold[] = {
    "That is our policy.",
    "You will need to call back later.",
    "I cannot do anything about that.",
    "Please hold.",
};
static const char *const agent_closing[] = {
    "Is there anything else I can help with?",
    "Thanks for your patience, have a great day.",
    "Glad I could help, take care.",
};
static const char *const agent_closing_unresolved[] = {
    "Is there anything else I can help with?",
    "I am sorry I could not do more today.",
    "I have noted everything on your file.",
};
static const char *const comment_promoter[] = {
    "Agent was lovely and fixed it fast.",
    "Great service, thank you!",
    "Really helpful and friendly.",
};
static const char *const comment_passive[] = {
    "Took a while but sorted in the end.",
    "Ok service, the wait was long.",
    "Fine, nothing special.",
};
static const char *const comment_detractor[] = {
    "Third time calling, still not fixed.",
    "Terrible, nobody listens.",
    "Long wait and no solution.",
};

/* ---- trajectories: how the customer felt at the start and at the end ---- */

typedef struct trajectory {
  const char *name;
  const char *const *open;
  size_t nopen;
  const char *const *close;
  size_t nclose;
  bool positive_end; /* more likely with better teams */
  bool tense;        /* negative start: tense middle turns, more transfers */
  int score_lo, score_hi;
  double resolved_p;
} trajectory;

#define POOL(p) (p), sizeof(p) / sizeof((p)[0])
static const trajectory trajectories[] = {
    {"angry->calm", POOL(angry_open), POOL(calm_close), true, true, 6, 9, 0.85},
    {"frustrated->grateful", POOL(frustrated_open), POOL(grateful_close), true, true, 9, 10, 0.95},
    {"confused->relieved", POOL(confused_open), POOL(relieved_close), true, false, 8, 10, 0.9},
    {"anxious->reassured", POOL(anxious_open), POOL(reassured_close), true, false, 7, 10, 0.9},
    {"happy->happy", POOL(happy_open), POOL(happy_close), true, false, 9, 10, 0.97},
    {"neutral->neutral", POOL(neutral_open), POOL(neutral_close), true, false, 6, 8, 0.8},
    {"neutral->angry", POOL(neutral_open), POOL(angry_close), false, false, 0, 4, 0.2},
    {"angry->angry", POOL(angry_open), POOL(angry_close), false, true, 0, 3, 0.1},
    {"confused->angry", POOL(confused_open), POOL(angry_close), false, false, 1, 5, 0.3},
};
#define NTRAJ (sizeof(trajectories) / sizeof(trajectories[0]))

typedef struct team {
  char id[32];
  double skill; /* 0..1: recoveries, empathy, shorter waits */
  double weights[NTRAJ];
  double total_weight;
} team;

static const char *const channel_names[] = {"voice", "chat", "email", "messaging", "social"};
static const double channel_cum[] = {0.50, 0.75, 0.85, 0.95, 1.0};

/* ---- output ---- */

/* Howard Hinnant's civil_from_days ("chrono-Compatible Low-Level Date Algorithms"). */
static void civil_from_days(int64_t z, int *y, int *m, int *d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = (int)(yoe + era * 400 + (*m <= 2));
}

static void put_time(gw_buf *b, int64_t ms) {
  int64_t days = ms / 86400000, rem = ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    days--;
  }
  int y, m, d;
  civil_from_days(days, &y, &m, &d);
  gw_buf_printf(b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\"", y, m, d, (int)(rem / 3600000),
                (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}

typedef struct gen {
  gen_config cfg;
  gen_rng rng;
  gw_buf out;
  gw_buf tenant_json; /* the tenant, JSON-escaped once */
  team *teams;
  double survey_rate;
  bool bias_extremes;
  gen_rng truth_rng; /* answers of customers not surveyed (--response-bias none) */
  FILE *truth;
  gw_buf truth_out;
  unsigned long long next_event;
} gen;

/* The answer of a customer of trajectory tr served by team t: the trajectory's range,
 * nudged by the team's skill. */
static int draw_answer(gen_rng *r, const trajectory *tr, const team *t) {
  int score = (int)rng_range(r, tr->score_lo, tr->score_hi);
  double nudge = rng_unit(r);
  if (nudge < 0.15 * t->skill && score < 10) {
    score++;
  } else if (nudge > 1.0 - 0.15 * (1.0 - t->skill) && score > 0) {
    score--;
  }
  return score;
}

/* --response-bias extremes: how much more (or less) likely than a typical customer one
 * with this answer is to answer a survey. */
static double response_weight(int score) {
  return score <= 4 ? 1.6 : score <= 6 ? 0.8 : score <= 8 ? 0.5 : 1.4;
}

/* The ids an interaction's events and its truth line share: tenant, team, agent and
 * interaction, as JSON members (the truth file is joined to the events by them). */
static void put_ids(gen *g, gw_buf *b, const team *t, int agent, long long interaction) {
  gw_buf_printf(b,
                "\"tenant_id\":\"%s\",\"team_id\":\"%s\",\"agent_id\":\"%s-agent-%02d\","
                "\"interaction_id\":\"int-%lld-%07lld\"",
                g->tenant_json.data, t->id, t->id, agent, g->cfg.seed, interaction);
}

static void put_truth(gen *g, const team *t, int agent, long long interaction, int score,
                      bool surveyed) {
  if (g->truth == NULL) {
    return;
  }
  gw_buf_putc(&g->truth_out, '{');
  put_ids(g, &g->truth_out, t, agent, interaction);
  gw_buf_printf(&g->truth_out, ",\"likelihood_to_recommend\":%d,\"surveyed\":%s}\n", score,
                surveyed ? "true" : "false");
}

static void put_head(gen *g, const team *t, int agent, long long interaction, const char *channel,
                     int64_t at_ms) {
  gw_buf *b = &g->out;
  gw_buf_printf(b, "{\"event_id\":\"%s-%lld-%llu\",", g->tenant_json.data, g->cfg.seed,
                ++g->next_event);
  put_ids(g, b, t, agent, interaction);
  gw_buf_printf(b, ",\"channel\":\"%s\",\"occurred_at\":", channel);
  put_time(b, at_ms);
}

static void put_turn(gw_buf *b, int seq, const char *speaker, const char *text, long long off) {
  gw_buf_printf(b, "%s{\"seq\":%d,\"speaker\":\"%s\",\"text\":\"%s\",\"offset_ms\":%lld}",
                seq > 1 ? "," : "", seq, speaker, text, off);
}

static void gen_interaction(gen *g, long long n, int64_t at_ms) {
  gen_rng *r = &g->rng;
  const team *t = &g->teams[rng_next(r) % (uint64_t)g->cfg.teams];
  double pick = rng_unit(r) * t->total_weight;
  size_t k = 0;
  while (k + 1 < NTRAJ && pick >= t->weights[k]) {
    pick -= t->weights[k];
    k++;
  }
  const trajectory *tr = &trajectories[k];
  double u = rng_unit(r);
  size_t ch = 0;
  while (ch + 1 < 5 && u >= channel_cum[ch]) {
    ch++;
  }
  int agent = (int)rng_range(r, 1, g->cfg.agents);

  /* Facts: handling 2..20 min, longer when the customer started upset; waits up to 10 min,
   * shorter in better-staffed (more skilled) teams. */
  long long handle = rng_range(r, 120000, 1200000);
  if (tr->tense && handle < 900000) {
    handle += rng_range(r, 0, 300000);
  }
  long long wait = (long long)(600000.0 * pow(rng_unit(r), 1.0 + 2.0 * t->skill));
  long long hold = rng_range(r, 0, handle / 4);
  long long acw = rng_range(r, 0, 60000);
  long long talk = handle - hold - acw > 0 ? handle - hold - acw : 0;
  int transfers = 0;
  double tp = rng_unit(r);
  if (tp < (tr->tense || !tr->positive_end ? 0.35 : 0.08)) {
    transfers = tp < 0.05 ? 2 : 1;
  }
  bool resolved = rng_unit(r) < tr->resolved_p;

  /* Transcript: 3..12 turns, customer and agent alternating; at least two customer turns, so
   * the start and the end of the customer's feeling are both heard. */
  int nturns = (int)rng_range(r, 3, 12);
  bool agent_first = rng_unit(r) < 0.5 && nturns >= 4;
  int first_c = agent_first ? 1 : 0;
  int last_c = ((nturns - 1 - first_c) / 2) * 2 + first_c;
  int last_a = ((nturns - 1 - (1 - first_c)) / 2) * 2 + (1 - first_c);
  bool empathic = rng_unit(r) < 0.3 + 0.6 * t->skill;
  /* Apologies and reassurance answer an upset opening; to a happy customer they sound odd. */
  bool upset = tr->open != neutral_open && tr->open != happy_open;

  gw_buf *b = &g->out;
  put_head(g, t, agent, n, channel_names[ch], at_ms);
  gw_buf_printf(b,
                ",\"closed\":{\"handle_ms\":%lld,\"wait_ms\":%lld,\"talk_ms\":%lld,"
                "\"hold_ms\":%lld,\"transfers\":%d,\"resolved\":%s,\"transcript\":[",
                handle, wait, talk, hold, transfers, resolved ? "true" : "false");
  for (int i = 0; i < nturns; i++) {
    long long off = (long long)i * handle / nturns + rng_range(r, 0, 999);
    bool customer = (i % 2) == first_c;
    const char *text;
    if (customer) {
      if (i == first_c) {
        text = rng_pick(r, tr->open, tr->nopen);
      } else if (i == last_c) {
        text = rng_pick(r, tr->close, tr->nclose);
      } else {
        text = tr->tense ? PICK(r, middle_tense) : PICK(r, middle_calm);
      }
    } else if (i == 0) {
      text = PICK(r, agent_greeting);
    } else if (i == last_a && i > last_c) {
      text = tr->positive_end ? PICK(r, agent_closing) : PICK(r, agent_closing_unresolved);
    } else if (!tr->positive_end && !empathic) {
      text = PICK(r, agent_cold);
    } else if (empathic && upset && i <= 2) {
      text = PICK(r, agent_empathy);
    } else {
      text = PICK(r, agent_action);
    }
    put_turn(b, i + 1, customer ? "customer" : "agent", text, off);
  }
  gw_buf_puts(b, "]}}\n");

  /* The answer follows the trajectory, nudged by the team; the survey comes 2..30 minutes
   * later. Without a bias the answer is drawn only for those surveyed, so the events are the
   * same bytes whether or not the truth is written. */
  double respond = rng_unit(r);
  int score;
  if (!g->bias_extremes) {
    if (respond >= g->survey_rate) {
      if (g->truth != NULL) {
        put_truth(g, t, agent, n, draw_answer(&g->truth_rng, tr, t), false);
      }
      return;
    }
    score = draw_answer(r, tr, t);
  } else {
    score = draw_answer(r, tr, t);
    if (respond >= g->survey_rate * response_weight(score)) {
      put_truth(g, t, agent, n, score, false);
      return;
    }
  }
  put_truth(g, t, agent, n, score, true);
  int64_t survey_at = at_ms + rng_range(r, 120000, 1800000);
  if (survey_at > g->cfg.end_ms) {
    survey_at = g->cfg.end_ms;
  }
  put_head(g, t, agent, n, channel_names[ch], survey_at);
  gw_buf_printf(b, ",\"survey\":{\"likelihood_to_recommend\":%d", score);
  if (rng_unit(r) < 0.4) {
    const char *c = score >= 9   ? PICK(r, comment_promoter)
                    : score >= 7 ? PICK(r, comment_passive)
                                 : PICK(r, comment_detractor);
    gw_buf_printf(b, ",\"comment\":\"%s\"", c);
  }
  gw_buf_puts(b, "}}\n");
}

static int flush_out(gen *g) {
  if (g->out.len > 0 && fwrite(g->out.data, 1, g->out.len, stdout) != g->out.len) {
    return -EIO;
  }
  gw_buf_reset(&g->out);
  if (g->truth != NULL && g->truth_out.len > 0 &&
      fwrite(g->truth_out.data, 1, g->truth_out.len, g->truth) != g->truth_out.len) {
    return -EIO;
  }
  gw_buf_reset(&g->truth_out);
  return 0;
}

static int parse_rate(const char *s, double *out) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (errno != 0 || end == s || *end != '\0' || !(v >= 0.0 && v <= 1.0)) {
    return -EINVAL;
  }
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  gen g;
  memset(&g, 0, sizeof(g));
  gw_config_values values = {0};
  char err[512];
  int rc = gw_config_load(gen_keys, sizeof(gen_keys) / sizeof(gen_keys[0]), &g.cfg, &values, argc,
                          argv, NULL, err, sizeof(err));
  if (rc == GW_CONFIG_HELP) {
    gw_config_usage("goodwill-gen",
                    "seeded sample InteractionEvents as NDJSON on stdout (flags only: GOODWILL_* "
                    "variables are not read)",
                    gen_keys, sizeof(gen_keys) / sizeof(gen_keys[0]), stdout);
    gw_config_free(&values);
    return 0;
  }
  if (rc == GW_CONFIG_VERSION) {
    printf("goodwill-gen %s\n", GW_VERSION);
    gw_config_free(&values);
    return 0;
  }
  if (rc != 0) {
    fprintf(stderr, "goodwill-gen: %s\n", err);
    gw_config_free(&values);
    return 2;
  }
  if (parse_rate(g.cfg.survey_rate, &g.survey_rate) != 0) {
    fprintf(stderr, "goodwill-gen: --survey-rate: \"%s\" is not a number in 0..1\n",
            g.cfg.survey_rate);
    gw_config_free(&values);
    return 2;
  }
  if (strcmp(g.cfg.response_bias, "none") != 0 && strcmp(g.cfg.response_bias, "extremes") != 0) {
    fprintf(stderr, "goodwill-gen: --response-bias: \"%s\" is not none or extremes\n",
            g.cfg.response_bias);
    gw_config_free(&values);
    return 2;
  }
  g.bias_extremes = strcmp(g.cfg.response_bias, "extremes") == 0;
  if (g.cfg.truth_file[0] != '\0' && (g.truth = fopen(g.cfg.truth_file, "w")) == NULL) {
    fprintf(stderr, "goodwill-gen: --truth-file: cannot open \"%s\": %s\n", g.cfg.truth_file,
            strerror(errno));
    gw_config_free(&values);
    return 2;
  }
  if (g.cfg.end_ms == 0) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    g.cfg.end_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
  }
  gw_buf_json_escape(&g.tenant_json, g.cfg.tenant, strlen(g.cfg.tenant));
  rng_seed(&g.rng, (uint64_t)g.cfg.seed);
  rng_seed(&g.truth_rng, (uint64_t)g.cfg.seed ^ 0x7472757468ULL);

  /* Team personalities come from their own stream, so they do not change with the number of
   * interactions: team-03 is the same team in a short and in a long run. */
  g.teams = calloc((size_t)g.cfg.teams, sizeof(*g.teams));
  if (g.teams == NULL) {
    abort();
  }
  gen_rng team_rng;
  rng_seed(&team_rng, (uint64_t)g.cfg.seed ^ 0x7465616d73ULL);
  for (long long i = 0; i < g.cfg.teams; i++) {
    team *t = &g.teams[i];
    snprintf(t->id, sizeof(t->id), "team-%02d", (int)(i + 1));
    t->skill = rng_unit(&team_rng);
    for (size_t k = 0; k < NTRAJ; k++) {
      double w = 1.0;
      w *= trajectories[k].positive_end ? 0.4 + 1.2 * t->skill : 1.6 - 1.4 * t->skill;
      t->weights[k] = w;
      t->total_weight += w;
    }
  }

  int64_t start_ms = g.cfg.end_ms - g.cfg.span_ms;
  for (long long n = 0; n < g.cfg.interactions && rc == 0; n++) {
    /* Stratified times: ascending, each interaction in its own slice of the span. */
    double slot = ((double)n + rng_unit(&g.rng)) / (double)g.cfg.interactions;
    int64_t at_ms = start_ms + (int64_t)(slot * (double)g.cfg.span_ms);
    gen_interaction(&g, n + 1, at_ms);
    if (g.out.len > (1 << 20)) {
      rc = flush_out(&g);
    }
  }
  if (rc == 0) {
    rc = flush_out(&g);
  }
  if (rc == 0 && fflush(stdout) != 0) {
    rc = -EIO;
  }
  if (g.truth != NULL && fclose(g.truth) != 0 && rc == 0) {
    rc = -EIO;
  }
  if (rc != 0) {
    fprintf(stderr, "goodwill-gen: writing the output failed\n");
  }
  free(g.teams);
  gw_buf_free(&g.out);
  gw_buf_free(&g.truth_out);
  gw_buf_free(&g.tenant_json);
  gw_config_free(&values);
  return rc == 0 ? 0 : 1;
}
