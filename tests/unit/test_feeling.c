/*
 * The feeling model: every rule with the direction it must move a score and why, the
 * tokenizer's edge cases, the lexicon loaders (goodwill, VADER-style, AFINN-style, broken
 * files with line numbers), the lexicon overlay's merge rules and the interaction rules.
 */
#include "goodwill/buf.h"
#include "goodwill/feeling.h"
#include "goodwill/sha256.h"
#include "gw_test.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

static gw_feeling_model *model;

static double val(const char *text) {
  gw_utterance_score s;
  gw_feeling_score_utterance(model, text, strlen(text), &s);
  return s.valence;
}

static gw_utterance_score score(const char *text) {
  gw_utterance_score s;
  gw_feeling_score_utterance(model, text, strlen(text), &s);
  return s;
}

#define CHECK_LT(a, b)                                                                             \
  do {                                                                                             \
    double gw_x_ = (a), gw_y_ = (b);                                                               \
    if (!(gw_x_ < gw_y_)) {                                                                        \
      fprintf(stderr, "%s:%d: CHECK failed: %s < %s (%.4f >= %.4f)\n", __FILE__, __LINE__, #a, #b, \
              gw_x_, gw_y_);                                                                       \
      gw_test_failed_checks++;                                                                     \
    }                                                                                              \
  } while (0)

/* Writes content to a fresh temporary file; the caller unlinks path. */
static void write_tmp(char path[64], const char *content) {
  strcpy(path, "/tmp/gw-test-lexicon-XXXXXX");
  int fd = mkstemp(path);
  CHECK(fd >= 0);
  if (fd < 0)
    return;
  size_t n = strlen(content);
  CHECK(write(fd, content, n) == (ssize_t)n);
  close(fd);
}

static int load_text(const char *content, gw_feeling_model **out, char *err, size_t errlen) {
  char path[64];
  write_tmp(path, content);
  int rc = gw_feeling_model_load(out, path, err, errlen);
  unlink(path);
  return rc;
}

/* --- polarity and basic direction --- */

static void test_polarity_thresholds(void) {
  CHECK_INT_EQ(gw_feeling_polarity(-0.05), GW_POLARITY_NEGATIVE);
  CHECK_INT_EQ(gw_feeling_polarity(-0.0499), GW_POLARITY_NEUTRAL);
  CHECK_INT_EQ(gw_feeling_polarity(0.0499), GW_POLARITY_NEUTRAL);
  CHECK_INT_EQ(gw_feeling_polarity(0.05), GW_POLARITY_POSITIVE);
  /* A conversation's band is wider (docs/FEELING_MODEL.md, "Reading a conversation"). */
  CHECK_INT_EQ(gw_feeling_conversation_polarity(-0.2), GW_POLARITY_NEGATIVE);
  CHECK_INT_EQ(gw_feeling_conversation_polarity(-0.199), GW_POLARITY_NEUTRAL);
  CHECK_INT_EQ(gw_feeling_conversation_polarity(0.199), GW_POLARITY_NEUTRAL);
  CHECK_INT_EQ(gw_feeling_conversation_polarity(0.2), GW_POLARITY_POSITIVE);
  CHECK_STR_EQ(gw_polarity_name(GW_POLARITY_NEGATIVE), "negative");
  CHECK_STR_EQ(gw_polarity_name(GW_POLARITY_NEUTRAL), "neutral");
  CHECK_STR_EQ(gw_polarity_name(GW_POLARITY_POSITIVE), "positive");
  CHECK_STR_EQ(gw_feeling_category_name(GW_FEELING_ANGER), "anger");
  CHECK_STR_EQ(gw_feeling_category_name(GW_FEELING_DELIGHT), "delight");
}

static void test_plain_words_have_their_sign(void) {
  CHECK(val("The agent was helpful") > 0.05);
  CHECK(val("The agent was rude") < -0.05);
  /* No sentiment words at all: exactly neutral, not a small bias. */
  CHECK(val("My account number is 12345") == 0.0);
  CHECK(val("") == 0.0);
  CHECK(val("   \n\t ") == 0.0);
}

static void test_valence_is_bounded(void) {
  const char *t = "AMAZING amazing amazing wonderful fantastic perfect excellent brilliant "
                  "superb love love love!!!!!!!!";
  double v = val(t);
  CHECK(v > 0.9 && v <= 1.0);
  v = val("terrible awful horrible worst useless pathetic disgraceful!!!!!!");
  CHECK(v < -0.9 && v >= -1.0);
}

/* --- rules --- */

static void test_negation_flips(void) {
  /* "not good" reads negative; "not bad" is litotes: positive, but milder than "good". */
  CHECK(val("the fix was good") > 0.05);
  CHECK(val("the fix was not good") < -0.05);
  CHECK(val("the fix was not bad") > 0.05);
  CHECK_LT(val("the fix was not bad"), val("the fix was good"));
  /* Contractions and apostrophe-less spellings negate too. */
  CHECK(val("it isn't good") < -0.05);
  CHECK(val("it isnt good") < -0.05);
  CHECK(val("it is never good") < -0.05);
  /* The window is three items: a negator four words back does not reach. */
  CHECK(val("not that the food here was good") > 0.05);
  /* Clause punctuation ends the negation's scope. */
  CHECK(val("no, it was good") > 0.05);
}

static void test_negated_feeling_is_not_expressed(void) {
  gw_utterance_score s = score("I am not angry");
  CHECK(s.feelings[GW_FEELING_ANGER] == 0.0);
  s = score("I am angry");
  CHECK(s.feelings[GW_FEELING_ANGER] > 0.3);
}

static void test_phrases_beat_word_rules(void) {
  /* "no problem" is a positive phrase, not "no" negating "problem". */
  CHECK(val("no problem") > 0.05);
  CHECK(val("not a problem") > 0.05);
  /* "still not working" is stronger than "not working", both negative. */
  CHECK(val("it is not working") < -0.05);
  CHECK_LT(val("it is still not working"), val("it is not working"));
  CHECK(val("this is the third time calling") < -0.3);
  CHECK(val("I've been on hold for an hour") < -0.2);
  CHECK(val("I want to speak to a supervisor") < -0.2);
  CHECK(val("I want to cancel my account") < -0.2);
  CHECK(val("that fixed it") > 0.3);
  CHECK(val("you're a lifesaver") > 0.5);
  /* A phrase does not cross clause punctuation: "hold. For" is not "hold for". */
  gw_utterance_score a = score("no problem"), b = score("no. problem");
  CHECK(a.valence > 0 && b.valence <= 0);
}

static void test_intensifiers_and_dampeners(void) {
  double base = val("the service was good");
  CHECK_LT(base, val("the service was very good"));
  CHECK_LT(val("the service was very good"), val("the service was extremely good"));
  CHECK_LT(val("the service was slightly good"), base);
  CHECK_LT(val("the service was kind of good"), base);
  CHECK(val("the service was kind of good") > 0.05);
  /* Intensifiers strengthen negatives too (more negative). */
  CHECK_LT(val("the wait was really bad"), val("the wait was bad"));
  CHECK_LT(val("the wait was bad"), val("the wait was a bit bad"));
  /* An intensifier alone carries no sentiment. */
  CHECK(val("very") == 0.0);
}

static void test_contrast_weighs_the_after_clause(void) {
  /* The clause after "but" decides: polite opening, negative verdict. */
  CHECK(val("the agent was nice but the problem is still not fixed") < -0.05);
  CHECK(val("the wait was long but the agent was wonderful") > 0.05);
  CHECK(val("the agent was nice however the wait was terrible") < -0.05);
  /* Against the same words without contrast, "but" moves the score toward the after-clause. */
  CHECK_LT(val("the agent was nice but the wait was terrible"),
           val("the agent was nice and the wait was terrible"));
}

static void test_caps_emphasis_needs_contrast(void) {
  CHECK_LT(val("this is bad"), 0);
  CHECK_LT(val("this is BAD"), val("this is bad"));
  /* A fully shouted sentence has no differential: same as lower case. */
  CHECK(val("THIS IS BAD") == val("this is bad"));
}

static void test_exclamation_and_questions_emphasise(void) {
  CHECK_LT(val("great"), val("great!"));
  CHECK_LT(val("great!"), val("great!!!"));
  /* Beyond four marks nothing more is added. */
  CHECK(val("great!!!!") == val("great!!!!!!!!"));
  CHECK_LT(val("why is this broken??"), val("why is this broken"));
  /* Punctuation alone is not a feeling. */
  CHECK(val("!!!") == 0.0);
}

static void test_elongation(void) {
  /* "sooo goood" is found as "so good" and emphasised. */
  CHECK(val("goooood") > 0.05);
  CHECK_LT(val("good"), val("goooood"));
  CHECK_LT(val("so good"), val("sooo good"));
  /* An elongated non-word stays unknown. */
  CHECK(val("zzzzz") == 0.0);
  /* Letters repeat whatever their case; digits never elongate a word. */
  CHECK(val("SoOo good") == val("sooo good"));
  CHECK(val("SoOo good") > val("so good"));
  CHECK(val("2000 good") == val("1999 good"));
}

static void test_word_shapes_score_alike(void) {
  /* The tokenizer reads plain ASCII words in a fast path and everything else in a general
   * one: the same words must score the same whichever path reads them. */
  CHECK(val("goood!") == val("goood !"));
  CHECK(val("I don't like it") == val("I don\u2019t like it"));
  CHECK(val("not good.") == val("not good ."));
  /* Words of 47, 48 and 60 bytes (the token limit is 48) match nothing and break nothing. */
  char text[128];
  for (int n = 46; n <= 60; n += 1) {
    memset(text, 'q', (size_t)n); /* not a word in any shape ("xx" is a kiss) */
    strcpy(text + n, " good");
    CHECK(val(text) == val("good"));
  }
}

/* Valence of text under model m. */
static double val_in(const gw_feeling_model *m, const char *text) {
  gw_utterance_score s;
  gw_feeling_score_utterance(m, text, strlen(text), &s);
  return s.valence;
}

static void test_long_words_hashtags_and_word_blocks(void) {
  /* Hashtags and mentions read as their word, by the fast path as by the general one. */
  CHECK(val("#fail") < -0.05);
  CHECK(val("#fail") == val("fail"));
  CHECK(val("@support thanks, that fixed it") == val("support thanks, that fixed it"));
  CHECK(val("so #blessed!") == val("so blessed!"));
  /* Inner apostrophes and hyphens in the fast path, typographic ones in the general path. */
  CHECK(val("I can't believe how good this is") == val("I can\u2019t believe how good this is"));
  CHECK(val("it's not working, don't you dare") ==
        val("it\u2019s not working, don\u2019t you dare"));
  /* Elongation found past the first 16 bytes of a word (the tokenizer reads 16 at a time). */
  CHECK(val("sooooooooooooooooooo good") == val("sooo good"));
  CHECK(val("gooooooooooooooooooooooood") == val("goooood"));

  /* Words and phrase words of 1..40 bytes around the 8- and 16-byte blocks in which keys are
   * hashed and compared: each matches itself and nothing that differs in its last byte. */
  gw_feeling_model *m = NULL;
  char err[256];
  char lex[4096] = "# goodwill-lexicon 1\n";
  char words[41][48];
  for (int n = 1; n <= 40; n++) {
    for (int k = 0; k < n; k++)
      words[n][k] = (char)('a' + (k * 7 + n) % 26);
    words[n][n] = '\0';
    /* No three equal letters in a row, which would read as elongation. */
    snprintf(lex + strlen(lex), sizeof(lex) - strlen(lex), "%s\t2\n", words[n]);
  }
  strcat(lex, "abcdefghijklmnop\t1\nabcdefghijklmno\t1\n"
              "supercalifragilistic expialidocious\t3\n");
  int rc = load_text(lex, &m, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  for (int n = 1; n <= 40; n++) {
    char text[64];
    CHECK(val_in(m, words[n]) > 0.3);
    snprintf(text, sizeof(text), "%s", words[n]);
    text[n - 1] = text[n - 1] == 'z' ? 'y' : 'z';
    CHECK(val_in(m, text) == 0.0);
  }
  /* A run of three across the first block's end (bytes 15-17 or 14-16) is elongation. */
  CHECK_LT(val_in(m, "abcdefghijklmnop"), val_in(m, "abcdefghijklmnoppp"));
  CHECK_LT(val_in(m, "abcdefghijklmno"), val_in(m, "abcdefghijklmnooo"));
  /* A phrase of words longer than 16 and 8 bytes. */
  CHECK(val_in(m, "Supercalifragilistic expialidocious!") > 0.3);
  CHECK(val_in(m, "supercalifragilistic") == 0.0);
  gw_feeling_model_free(m);
}

static void test_emoticons_and_emoji(void) {
  CHECK(val("ok :)") > 0.05);
  CHECK(val("ok :(") < -0.05);
  CHECK(val("thanks :-)") > val("thanks"));
  CHECK(val("<3") > 0.05);
  /* An emoticon followed by sentence punctuation is still recognised. */
  CHECK(val("see you :).") > 0.05);
  CHECK(val("\xf0\x9f\x98\xa1") < -0.3); /* U+1F621 pouting face */
  CHECK(val("\xf0\x9f\x91\x8d") > 0.05); /* U+1F44D thumbs up */
  /* A skin-tone modifier does not hide the emoji. */
  CHECK(val("\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd") == val("\xf0\x9f\x91\x8d"));
  /* Emoji glued to a word are split from it. */
  CHECK(val("thanks\xf0\x9f\x99\x8f") > val("thanks"));
}

static void test_tokenizer_utf8(void) {
  /* Typographic apostrophes are apostrophes. */
  CHECK(val("it doesn\xe2\x80\x99t work") == val("it doesn't work"));
  /* Invalid UTF-8 is skipped, never read past the end. */
  const char bad[] = {'g', 'o', 'o', 'd', ' ', (char)0xff, (char)0xc3, ' ', 'o', 'k', (char)0xe2};
  gw_utterance_score s;
  gw_feeling_score_utterance(model, bad, sizeof(bad), &s);
  CHECK(s.valence > 0.05);
  /* Length is honoured: a NUL-free prefix of a longer buffer. */
  gw_feeling_score_utterance(model, "bad good", 3, &s);
  CHECK(s.valence < -0.05);
  /* Non-Latin text is not mistaken for anything. */
  CHECK(val("\xd0\xbf\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82") == 0.0);
  /* A very long input is scored without trouble (tokens beyond the cap are ignored). */
  size_t n = 200000;
  char *big = malloc(n + 1);
  for (size_t i = 0; i < n; i++)
    big[i] = (i % 5 == 4) ? ' ' : "good"[i % 5];
  big[n] = 0;
  CHECK(val(big) > 0.9);
  free(big);
}

static void test_feeling_categories(void) {
  gw_utterance_score s = score("I'm furious, this is the third time calling");
  CHECK(s.feelings[GW_FEELING_ANGER] > 0.5);
  CHECK(s.feelings[GW_FEELING_FRUSTRATION] > 0.3);
  CHECK(s.feelings[GW_FEELING_DELIGHT] == 0.0);
  s = score("thank you so much, that fixed it");
  CHECK(s.feelings[GW_FEELING_GRATITUDE] > 0.5);
  CHECK(s.feelings[GW_FEELING_RELIEF] > 0.3);
  CHECK(s.feelings[GW_FEELING_ANGER] == 0.0);
  s = score("I'm confused, this makes no sense");
  CHECK(s.feelings[GW_FEELING_CONFUSION] > 0.5);
  s = score("I'm really worried about my account being hacked");
  CHECK(s.feelings[GW_FEELING_ANXIETY] > 0.5);
  s = score("so disappointed");
  CHECK(s.feelings[GW_FEELING_SADNESS] > 0.3);
  s = score("perfect, very satisfied");
  CHECK(s.feelings[GW_FEELING_SATISFACTION] > 0.5);
  s = score("wow amazing, I'm thrilled");
  CHECK(s.feelings[GW_FEELING_DELIGHT] > 0.5);
  for (int c = 0; c < GW_FEELING_COUNT; c++)
    CHECK(s.feelings[c] >= 0.0 && s.feelings[c] <= 1.0);
}

/* A category needs a word that means it (docs/FEELING_MODEL.md, "Feeling categories"): not
 * merely a negative or positive valence, nor a word that touches the category in passing. */
static void test_categories_need_evidence(void) {
  /* Merely negative: "terrible" is bad, and only a little angry. */
  gw_utterance_score s = score("this is terrible");
  CHECK(s.valence < -0.3);
  CHECK(s.feelings[GW_FEELING_ANGER] == 0.0);
  s = score("I hate this");
  CHECK(s.feelings[GW_FEELING_ANGER] > 0.3);
  s = score("I'm so relieved");
  CHECK(s.feelings[GW_FEELING_RELIEF] > 0.5);
  /* "works" is satisfaction first; the relief it touches is not enough alone. */
  s = score("it works now");
  CHECK(s.feelings[GW_FEELING_SATISFACTION] > 0.3);
  CHECK(s.feelings[GW_FEELING_RELIEF] == 0.0);
  /* A question is not confusion by itself; confusion words are. */
  s = score("Can you check my order status?");
  for (int c = 0; c < GW_FEELING_COUNT; c++)
    CHECK(s.feelings[c] == 0.0);
  s = score("Why was I charged twice?");
  CHECK(s.feelings[GW_FEELING_CONFUSION] == 0.0);
  s = score("Why was I charged twice? I don't understand");
  CHECK(s.feelings[GW_FEELING_CONFUSION] > 0.3);
  /* Negated evidence is none. */
  s = score("I'm not worried");
  CHECK(s.feelings[GW_FEELING_ANXIETY] == 0.0);
  /* Politeness words alone are not delight. */
  s = score("thanks");
  CHECK(s.feelings[GW_FEELING_GRATITUDE] > 0.3);
  CHECK(s.feelings[GW_FEELING_DELIGHT] == 0.0);
}

/* Once present, intensity says how strongly: modifiers, repetition and '!' raise it. */
/* The category weights of the default lexicon follow the written definitions
 * (docs/FEELING_MODEL.md, "What each category's evidence is"): the words that name a feeling,
 * or are its standard expression, reach their category's minimum; words that judge a thing
 * or touch a feeling in passing do not. */
static void test_category_weights_follow_definitions(void) {
  gw_utterance_score s = score("I'm fed up");
  CHECK(s.feelings[GW_FEELING_FRUSTRATION] > 0.3);
  s = score("this is so annoying");
  CHECK(s.feelings[GW_FEELING_FRUSTRATION] > 0.3);
  s = score("not again");
  CHECK(s.feelings[GW_FEELING_FRUSTRATION] > 0.3);
  s = score("phew");
  CHECK(s.feelings[GW_FEELING_RELIEF] > 0.0);
  s = score("finally sorted, thank goodness");
  CHECK(s.feelings[GW_FEELING_RELIEF] > 0.3);
  s = score("wait, what do you mean?");
  CHECK(s.feelings[GW_FEELING_CONFUSION] > 0.0);
  s = score("I'm so happy");
  CHECK(s.feelings[GW_FEELING_DELIGHT] > 0.3);
  s = score("that's hilarious");
  CHECK(s.feelings[GW_FEELING_DELIGHT] > 0.3);
  s = score("wtf is this");
  CHECK(s.feelings[GW_FEELING_ANGER] > 0.3);
  /* Judging a thing bad is not frustration, an apology is not sadness, surprise is not
   * delight. */
  s = score("the food was terrible");
  CHECK(s.feelings[GW_FEELING_FRUSTRATION] == 0.0 && s.feelings[GW_FEELING_ANGER] == 0.0);
  s = score("sorry, my mistake");
  CHECK(s.feelings[GW_FEELING_SADNESS] == 0.0);
  s = score("wow");
  CHECK(s.feelings[GW_FEELING_DELIGHT] == 0.0);
  /* Negated, a weight says nothing. */
  s = score("I'm not annoyed");
  CHECK(s.feelings[GW_FEELING_FRUSTRATION] == 0.0);
}

static void test_category_intensity_follows_strength(void) {
  double bit = score("I'm a bit worried").feelings[GW_FEELING_ANXIETY];
  double plain = score("I'm worried").feelings[GW_FEELING_ANXIETY];
  double very = score("I'm extremely worried").feelings[GW_FEELING_ANXIETY];
  CHECK(bit > 0 && bit < plain && plain < very);
  double once = score("I'm furious").feelings[GW_FEELING_ANGER];
  double more = score("I'm furious, absolutely furious!!!").feelings[GW_FEELING_ANGER];
  CHECK(once > 0.3 && more > once && more < 1.0);
}

/* The evidence threshold holds for any goodwill-format lexicon, and a present category is never
 * rounded away: its intensity is at least 0.001. */
static void test_category_evidence_threshold(void) {
  gw_feeling_model *m = NULL;
  char err[256];
  int rc = load_text("# goodwill-lexicon 1\n"
                     "grumble\t-2\tanger:0.85\n"
                     "rage\t-2\tanger:0.9\n"
                     "tut\t-0.001\tanger:0.9\n",
                     &m, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  gw_utterance_score s;
  gw_feeling_score_utterance(m, "grumble", 7, &s);
  CHECK(s.valence < -0.3 && s.feelings[GW_FEELING_ANGER] == 0.0);
  /* Two weak words are not one strong one. */
  gw_feeling_score_utterance(m, "grumble grumble", 15, &s);
  CHECK(s.feelings[GW_FEELING_ANGER] == 0.0);
  gw_feeling_score_utterance(m, "rage", 4, &s);
  CHECK(s.feelings[GW_FEELING_ANGER] > 0.3);
  gw_feeling_score_utterance(m, "tut", 3, &s);
  CHECK(s.feelings[GW_FEELING_ANGER] >= 0.001);
  gw_feeling_model_free(m);
}

static void test_agent_empathy(void) {
  CHECK(score("Your order number is 5512.").empathy == 0.0);
  double one = score("I'm sorry about that.").empathy;
  double many = score("I'm so sorry about that, I completely understand how frustrating that "
                      "is. I'll take care of it and I'll make sure it's fixed. Thank you for "
                      "your patience.")
                    .empathy;
  CHECK(one > 0.1);
  CHECK_LT(one, many);
  CHECK(many <= 1.0 && many > 0.8);
  /* Repeating one behaviour does not inflate the signal. */
  CHECK(score("sorry sorry sorry sorry sorry").empathy == score("sorry").empathy);
}

/* --- interactions --- */

static void test_interaction_recovered(void) {
  gw_turn_text t[] = {
      {GW_SPEAKER_CUSTOMER, "This is the third time calling and it's still not working!", 0},
      {GW_SPEAKER_AGENT, "I'm so sorry about that. Let me fix it for you right now.", 0},
      {GW_SPEAKER_CUSTOMER, "ok", 0},
      {GW_SPEAKER_AGENT, "I've reset the line, can you try again?", 0},
      {GW_SPEAKER_CUSTOMER, "That fixed it, thank you so much!", 0},
      {GW_SPEAKER_CUSTOMER, "ok bye", 0},
  };
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    t[i].len = strlen(t[i].text);
  gw_interaction_feeling f;
  gw_feeling_score_interaction(model, t, 6, &f);
  CHECK(f.has_customer_turns);
  CHECK_INT_EQ(f.customer_turns, 4);
  CHECK_INT_EQ(f.agent_turns, 2);
  CHECK_INT_EQ(f.start_polarity, GW_POLARITY_NEGATIVE);
  CHECK_INT_EQ(f.end_polarity, GW_POLARITY_POSITIVE);
  CHECK(f.recovered && !f.soured);
  CHECK(f.change > 0.5);
  CHECK(f.change == f.end - f.start);
  CHECK(f.start_feelings[GW_FEELING_FRUSTRATION] > 0.3);
  CHECK(f.end_feelings[GW_FEELING_GRATITUDE] > 0.3);
  CHECK(f.empathy > 0.2);
}

static void test_interaction_soured_and_trailing_closing(void) {
  gw_turn_text t[] = {
      {GW_SPEAKER_CUSTOMER, "Hi, I love your new plans, I'd like to upgrade mine please", 0},
      {GW_SPEAKER_AGENT, "That will be an extra 20 a month.", 0},
      {GW_SPEAKER_CUSTOMER, "That's ridiculous, nobody told me about hidden fees", 0},
      {GW_SPEAKER_CUSTOMER, "thanks", 0},
  };
  for (size_t i = 0; i < 4; i++)
    t[i].len = strlen(t[i].text);
  gw_interaction_feeling f;
  gw_feeling_score_interaction(model, t, 4, &f);
  /* The trailing "thanks" is a low-information closing: it must not turn the end positive. */
  CHECK_INT_EQ(f.start_polarity, GW_POLARITY_POSITIVE);
  CHECK_INT_EQ(f.end_polarity, GW_POLARITY_NEGATIVE);
  CHECK(f.soured && !f.recovered);
  CHECK(f.change < 0);
}

static void test_interaction_edge_cases(void) {
  gw_interaction_feeling f;
  /* Nothing at all. */
  gw_feeling_score_interaction(model, NULL, 0, &f);
  CHECK(!f.has_customer_turns && f.start == 0 && f.end == 0 && !f.recovered && !f.soured);
  CHECK_INT_EQ(f.start_polarity, GW_POLARITY_NEUTRAL);
  /* Only the agent spoke: no customer feeling, but the empathy is measured. */
  gw_turn_text agent[] = {{GW_SPEAKER_AGENT, "I'm sorry, I understand. I'll take care of it.", 0}};
  agent[0].len = strlen(agent[0].text);
  gw_feeling_score_interaction(model, agent, 1, &f);
  CHECK(!f.has_customer_turns && f.customer_turns == 0 && f.agent_turns == 1);
  CHECK(f.empathy > 0.3);
  CHECK(f.start == 0 && f.end == 0);
  /* One customer turn: start == end, no change. */
  gw_turn_text one[] = {{GW_SPEAKER_CUSTOMER, "this is awful", 0}};
  one[0].len = strlen(one[0].text);
  gw_feeling_score_interaction(model, one, 1, &f);
  CHECK(f.has_customer_turns && f.start == f.end && f.change == 0 && f.start < -0.05);
  CHECK(!f.recovered && !f.soured);
  /* Bot turns are ignored for feeling: a cheerful bot does not make the customer happy. */
  gw_turn_text bot[] = {
      {GW_SPEAKER_BOT, "Hi! Great to see you! Wonderful day! :)", 0},
      {GW_SPEAKER_CUSTOMER, "my internet is down again", 0},
      {GW_SPEAKER_BOT, "Awesome, thanks!", 0},
  };
  for (size_t i = 0; i < 3; i++)
    bot[i].len = strlen(bot[i].text);
  gw_feeling_score_interaction(model, bot, 3, &f);
  CHECK_INT_EQ(f.customer_turns, 1);
  CHECK_INT_EQ(f.agent_turns, 0);
  CHECK(f.start < 0 && f.end < 0);
  /* Only closings: they are all the customer said, and courtesy is no feeling. */
  gw_turn_text closings[] = {{GW_SPEAKER_CUSTOMER, "ok thanks", 0}};
  closings[0].len = strlen(closings[0].text);
  gw_feeling_score_interaction(model, closings, 1, &f);
  CHECK(f.has_customer_turns && f.end == 0 && f.end_polarity == GW_POLARITY_NEUTRAL);
}

/* --- reading a conversation (docs/FEELING_MODEL.md, "Reading a conversation") --- */

/* Scores turns given as speaker/text pairs (the lengths are filled in here). */
static gw_interaction_feeling interact(const gw_turn_text *turns, size_t n) {
  gw_turn_text t[16];
  CHECK(n <= 16);
  for (size_t i = 0; i < n && i < 16; i++) {
    t[i] = turns[i];
    t[i].len = strlen(t[i].text);
  }
  gw_interaction_feeling f;
  gw_feeling_score_interaction(model, t, n < 16 ? n : 16, &f);
  return f;
}

/* How a conversation reads one customer turn said alone: its polarity. */
static gw_polarity felt(const char *text) {
  gw_turn_text t[] = {{GW_SPEAKER_CUSTOMER, text, 0}};
  return interact(t, 1).start_polarity;
}

#define CHECK_FELT(text, polarity)                                                                 \
  do {                                                                                             \
    gw_polarity gw_p_ = felt(text);                                                                \
    if (gw_p_ != (polarity)) {                                                                     \
      fprintf(stderr, "%s:%d: CHECK failed: %s reads %s, want %s\n", __FILE__, __LINE__, (text),   \
              gw_polarity_name(gw_p_), gw_polarity_name(polarity));                                \
      gw_test_failed_checks++;                                                                     \
    }                                                                                              \
  } while (0)

static void test_conversation_politeness_is_not_a_feeling(void) {
  /* Courtesy alone is neutral in a conversation, though a text that says "thanks" is a
   * friendly text (the utterance keeps its valence: the VADER sets read it so). */
  CHECK(val("thanks") > 0.05);
  CHECK(val("have a nice day") > 0.05);
  CHECK_FELT("thanks", GW_POLARITY_NEUTRAL);
  CHECK_FELT("ok", GW_POLARITY_NEUTRAL);
  CHECK_FELT("please", GW_POLARITY_NEUTRAL);
  CHECK_FELT("have a nice day", GW_POLARITY_NEUTRAL);
  CHECK_FELT("appreciate it", GW_POLARITY_NEUTRAL);
  CHECK_FELT("ok great, thanks, have a nice day", GW_POLARITY_NEUTRAL);
  CHECK_FELT("Perfect, thank you very much. Bye!", GW_POLARITY_NEUTRAL);
  CHECK_FELT("no that's all thanks", GW_POLARITY_NEUTRAL);
  CHECK_FELT("no thx", GW_POLARITY_NEUTRAL);
  CHECK_FELT("Good morning, I'd like to update my address please.", GW_POLARITY_NEUTRAL);
  /* Describing the problem is not a feeling; living it is. */
  CHECK_FELT("Hi, my internet is not working since yesterday.", GW_POLARITY_NEUTRAL);
  CHECK_FELT("Hi, my card was declined at the shop, can you check why?", GW_POLARITY_NEUTRAL);
  /* Asking about something good is not feeling it; a complaining question still complains. */
  CHECK_FELT("Hi, is there a student discount I could use?", GW_POLARITY_NEUTRAL);
  CHECK_FELT("why is this so ridiculously slow?", GW_POLARITY_NEGATIVE);
  CHECK_FELT("My internet is still not working, this is ridiculous", GW_POLARITY_NEGATIVE);
  CHECK_FELT("I called 2 HOURS ago and nobody has come", GW_POLARITY_NEGATIVE);
  /* A polite customer with a question, helped, who says thanks: neutral to neutral. */
  gw_turn_text polite[] = {
      {GW_SPEAKER_CUSTOMER, "Hello, could you tell me when my contract ends? Thanks", 0},
      {GW_SPEAKER_AGENT, "Of course, it ends on 3 May.", 0},
      {GW_SPEAKER_CUSTOMER, "ok great, thank you very much, appreciate it. have a nice day", 0},
  };
  gw_interaction_feeling f = interact(polite, 3);
  CHECK_INT_EQ(f.start_polarity, GW_POLARITY_NEUTRAL);
  CHECK_INT_EQ(f.end_polarity, GW_POLARITY_NEUTRAL);
  CHECK_INT_EQ(f.change_direction, GW_CHANGE_UNCHANGED);
  CHECK(!f.recovered && !f.soured);
}

static void test_conversation_sarcasm_and_resignation(void) {
  CHECK_FELT("thanks for nothing", GW_POLARITY_NEGATIVE);
  CHECK_FELT("Great. Another week without internet.", GW_POLARITY_NEGATIVE);
  CHECK_FELT("great, another week without internet. really looking forward to that",
             GW_POLARITY_NEGATIVE);
  CHECK_FELT("So I pay for 500 and get 48. Brilliant. Glad I asked 🙃", GW_POLARITY_NEGATIVE);
  CHECK_FELT("Three weeks and still no callback, useless. Lovely.", GW_POLARITY_NEGATIVE);
  CHECK_FELT("fine, whatever", GW_POLARITY_NEGATIVE);
  CHECK_FELT("I guess I'll have to live with it", GW_POLARITY_NEGATIVE);
  CHECK_FELT("ok. would have been nice to know that yesterday", GW_POLARITY_NEGATIVE);
  /* A lone approval in a turn that praises is no sarcasm. */
  CHECK_FELT("Lovely, that worked, thank you!", GW_POLARITY_POSITIVE);
  /* An unresolved problem closed politely ends negative, whatever the courtesy. */
  gw_turn_text t[] = {
      {GW_SPEAKER_CUSTOMER, "Hi, my broadband is not working.", 0},
      {GW_SPEAKER_AGENT, "An engineer can come next Tuesday.", 0},
      {GW_SPEAKER_CUSTOMER, "Great. Another week without internet. Thanks for nothing.", 0},
      {GW_SPEAKER_CUSTOMER, "bye", 0},
  };
  gw_interaction_feeling f = interact(t, 4);
  CHECK_INT_EQ(f.start_polarity, GW_POLARITY_NEUTRAL);
  CHECK_INT_EQ(f.end_polarity, GW_POLARITY_NEGATIVE);
  CHECK_INT_EQ(f.change_direction, GW_CHANGE_WORSENED);
  CHECK(f.soured);
}

static void test_conversation_genuine_delight(void) {
  CHECK_FELT("thank you so much, you saved my weekend", GW_POLARITY_POSITIVE);
  CHECK_FELT("amazing, thank you so much!!", GW_POLARITY_POSITIVE);
  CHECK_FELT("you're a lifesaver, honestly", GW_POLARITY_POSITIVE);
  CHECK_FELT("That fixed it, what a relief", GW_POLARITY_POSITIVE);
  /* A bad feeling told in the past in a turn that thanks is what the customer went through:
   * relief. Told in the present, it is still felt. */
  CHECK_FELT("oh my god, thank you. i was really panicking. you've been so kind",
             GW_POLARITY_POSITIVE);
  CHECK_FELT("thank you. I am really panicking now", GW_POLARITY_NEGATIVE);
}

static void test_conversation_start_and_end_turns(void) {
  /* A menu choice and an account number carry nothing: the start is the first turn that says
   * something, and the end the last one, not the goodbye after it. */
  gw_turn_text t[] = {
      {GW_SPEAKER_BOT, "Hi! Type 1 for billing, 2 for faults, 3 for anything else.", 0},
      {GW_SPEAKER_CUSTOMER, "3", 0},
      {GW_SPEAKER_CUSTOMER,
       "This is the third time calling and it's still not working. Ridiculous.", 0},
      {GW_SPEAKER_AGENT, "I'm sorry. Can I have your account number?", 0},
      {GW_SPEAKER_CUSTOMER, "AC-20931", 0},
      {GW_SPEAKER_AGENT, "I've reset the line, it should work now.", 0},
      {GW_SPEAKER_CUSTOMER, "It's still broken. Useless.", 0},
      {GW_SPEAKER_CUSTOMER, "no that's it. bye", 0},
  };
  gw_interaction_feeling f = interact(t, 8);
  CHECK_INT_EQ(f.customer_turns, 5);
  CHECK_INT_EQ(f.start_polarity, GW_POLARITY_NEGATIVE);
  CHECK_INT_EQ(f.end_polarity, GW_POLARITY_NEGATIVE);
  CHECK(f.start < -0.5 && f.end < -0.5);
  CHECK_INT_EQ(f.change_direction, GW_CHANGE_UNCHANGED);
  /* Furious, then still annoyed but calmer: negative to negative, improved. */
  gw_turn_text calmer[] = {
      {GW_SPEAKER_CUSTOMER, "This is absolutely ridiculous, I am furious, third time calling!!", 0},
      {GW_SPEAKER_AGENT, "I'm sorry, I've fixed it.", 0},
      {GW_SPEAKER_CUSTOMER, "ok. still annoyed that it took three calls", 0},
  };
  f = interact(calmer, 3);
  CHECK_INT_EQ(f.start_polarity, GW_POLARITY_NEGATIVE);
  CHECK_INT_EQ(f.end_polarity, GW_POLARITY_NEGATIVE);
  CHECK_INT_EQ(f.change_direction, GW_CHANGE_IMPROVED);
  /* Polarities that differ give the direction: neutral to positive improved. */
  gw_turn_text better[] = {
      {GW_SPEAKER_CUSTOMER, "Hi, can I change my delivery date?", 0},
      {GW_SPEAKER_AGENT, "Done, and I've waived the fee.", 0},
      {GW_SPEAKER_CUSTOMER, "Oh that's wonderful, you've been so helpful!", 0},
  };
  f = interact(better, 3);
  CHECK_INT_EQ(f.start_polarity, GW_POLARITY_NEUTRAL);
  CHECK_INT_EQ(f.end_polarity, GW_POLARITY_POSITIVE);
  CHECK_INT_EQ(f.change_direction, GW_CHANGE_IMPROVED);
  CHECK_STR_EQ(gw_change_direction_name(f.change_direction), "improved");
}

/* --- explanations --- */

#define CHECK_NEAR(a, b, eps)                                                                      \
  do {                                                                                             \
    double gw_x_ = (a), gw_y_ = (b);                                                               \
    if (!(fabs(gw_x_ - gw_y_) <= (eps))) {                                                         \
      fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%.12f != %.12f)\n", __FILE__, __LINE__, #a,  \
              #b, gw_x_, gw_y_);                                                                   \
      gw_test_failed_checks++;                                                                     \
    }                                                                                              \
  } while (0)

/* The explanation of one utterance must add up to the score it explains: each hit's lexicon
 * valence plus its steps' deltas is its contribution, the contributions and the punctuation
 * give S, the normalisation of S is the valence, the hits' evidence gives each category, and
 * the empathy phrases give the empathy. Returns the number of hits. */
static size_t check_explanation_adds_up(const gw_feeling_explain *x, size_t ui, const char *text,
                                        const gw_utterance_score *s) {
  CHECK(!x->failed);
  CHECK(ui < x->nutterances);
  if (x->failed || ui >= x->nutterances)
    return 0;
  const gw_explain_utterance *u = &x->utterances[ui];
  double sum = 0, raw[GW_FEELING_COUNT] = {0};
  for (size_t i = u->first_hit; i < u->first_hit + u->nhits; i++) {
    const gw_explain_hit *h = &x->hits[i];
    double v = h->valence;
    for (size_t k = h->first_step; k < h->first_step + h->nsteps; k++)
      v += x->steps[k].delta;
    CHECK_NEAR(v, h->contribution, 1e-9);
    sum += h->contribution;
    for (int c = 0; c < GW_FEELING_COUNT; c++)
      raw[c] += h->feelings[c];
    /* The hit is the text as written, and its entry is a lexicon key. */
    char written[512];
    snprintf(written, sizeof(written), "%.*s", (int)h->text_len, x->arena + h->text);
    CHECK(h->text_len > 0 && strstr(text, written) != NULL);
    CHECK(h->entry_len > 0 && h->valence != 0 && fabs(h->valence) <= 4);
  }
  for (size_t k = u->first_punct; k < u->first_punct + u->npunct; k++) {
    CHECK(x->steps[k].rule == GW_EXPLAIN_EXCLAMATION ||
          x->steps[k].rule == GW_EXPLAIN_QUESTION_MARKS);
    sum += x->steps[k].delta;
  }
  CHECK_NEAR(sum, u->sum, 1e-9);
  double v = u->sum / sqrt(u->sum * u->sum + u->alpha);
  v = v > 1 ? 1 : v < -1 ? -1 : v;
  CHECK_NEAR(v, s->valence, 1e-12);
  CHECK(u->valence == s->valence);
  /* A category with evidence is present only when its strongest annotation reaches the
   * category's minimum; the explanation says which were held back. */
  for (int c = 0; c < GW_FEELING_COUNT; c++) {
    CHECK_NEAR(raw[c], u->feelings_raw[c], 1e-12);
    double r = u->feelings_raw[c] * u->feelings_factor;
    CHECK(u->held_back[c] == (r > 0 && u->evidence[c] < u->min_evidence[c]));
    double want = 0;
    if (r > 0 && !u->held_back[c]) {
      want = 1 - exp(-1.5 * r);
      if (want < u->min_intensity)
        want = u->min_intensity;
    }
    CHECK_NEAR(want, s->feelings[c], 1e-12);
  }
  /* The felt valence of a customer turn: the hits' felt parts and the felt steps give its
   * sum, whose normalisation is the felt valence. */
  if (u->conversation) {
    double fs = 0;
    for (size_t i = u->first_hit; i < u->first_hit + u->nhits; i++) {
      const gw_explain_hit *h = &x->hits[i];
      fs += h->felt;
      if (h->felt_rules &
          (GW_EXPLAIN_FELT_FORMULA | GW_EXPLAIN_FELT_COURTESY | GW_EXPLAIN_FELT_NO_PROBLEM))
        CHECK(h->felt == 0);
      if (!h->felt_rules)
        CHECK_NEAR(h->felt, h->contribution, 1e-6); /* float in the scorer */
    }
    for (size_t k = u->first_felt_step; k < u->first_felt_step + u->nfelt_steps; k++) {
      CHECK(x->steps[k].rule == GW_EXPLAIN_SHOUT || x->steps[k].rule == GW_EXPLAIN_HEDGE ||
            x->steps[k].rule == GW_EXPLAIN_RESIGNATION ||
            x->steps[k].rule == GW_EXPLAIN_EXCLAMATION ||
            x->steps[k].rule == GW_EXPLAIN_QUESTION_MARKS);
      fs += x->steps[k].delta;
    }
    CHECK_NEAR(fs, u->felt_sum, 1e-9);
    double f = u->felt_sum / sqrt(u->felt_sum * u->felt_sum + u->alpha);
    CHECK(u->felt == (f > 1 ? 1 : f < -1 ? -1 : f));
  }
  double kinds[5] = {0}, weights[5] = {0.25, 0.25, 0.2, 0.2, 0.1}, empathy = 0;
  for (size_t k = u->first_empathy; k < u->first_empathy + u->nempathy; k++)
    if (x->empathy[k].strength > kinds[x->empathy[k].kind])
      kinds[x->empathy[k].kind] = x->empathy[k].strength;
  for (int k = 0; k < 5; k++)
    empathy += weights[k] * kinds[k];
  CHECK_NEAR(empathy > 1 ? 1 : empathy, s->empathy, 1e-12);
  return u->nhits;
}

/* Scores text with and without a sink: the same scores, and an explanation that adds up. */
static void check_explained(gw_feeling_explain *x, const char *text) {
  gw_utterance_score plain, explained;
  gw_feeling_score_utterance(model, text, strlen(text), &plain);
  gw_feeling_score_utterance_explained(model, text, strlen(text), &explained, x);
  CHECK(memcmp(&plain, &explained, sizeof(plain)) == 0);
  CHECK(!x->interaction && x->nutterances == 1);
  check_explanation_adds_up(x, 0, text, &explained);
  CHECK(!x->utterances[0].conversation);
  /* The same text as the one customer turn of an interaction: its felt valence, which is the
   * start and the end, adds up too. */
  gw_turn_text turn = {GW_SPEAKER_CUSTOMER, text, strlen(text)};
  gw_interaction_feeling pf, ef;
  gw_feeling_score_interaction(model, &turn, 1, &pf);
  gw_feeling_score_interaction_explained(model, &turn, 1, &ef, x);
  CHECK(memcmp(&pf, &ef, sizeof(pf)) == 0);
  CHECK(x->interaction && !x->failed);
  if (x->nturns == 1) {
    const gw_explain_turn *et = &x->turns[0];
    CHECK(et->start_weight == 1.0 && et->end_weight == 1.0);
    CHECK(et->felt == ef.start && et->felt == ef.end);
    CHECK(et->utterance < x->nutterances);
    if (et->utterance < x->nutterances) {
      CHECK(x->utterances[et->utterance].conversation);
      CHECK(x->utterances[et->utterance].felt == et->felt);
      check_explanation_adds_up(x, et->utterance, text, &explained);
    }
    CHECK(x->start_polarity == gw_feeling_conversation_polarity(et->felt));
    CHECK(x->change_direction == GW_CHANGE_UNCHANGED && x->direction_rule == 0);
  } else {
    CHECK(x->nturns == 0 && !ef.has_customer_turns);
  }
  /* Leave the utterance's own explanation in x, for the callers' further checks. */
  gw_feeling_score_utterance_explained(model, text, strlen(text), &explained, x);
}

/* Scores an interaction with and without a sink: the same scores, and an explanation that
 * adds up: each weighted turn's utterance (felt valence included), the windows' weighted
 * means of the turns' felt valences to start and end, the band to the polarities, and the
 * polarities or the change's size to the direction. */
static void check_interaction_explained(gw_feeling_explain *x, const gw_turn_text *t, size_t n) {
  gw_interaction_feeling plain, f;
  gw_feeling_score_interaction(model, t, n, &plain);
  gw_feeling_score_interaction_explained(model, t, n, &f, x);
  CHECK(memcmp(&plain, &f, sizeof(f)) == 0);
  CHECK(x->interaction && !x->failed);
  CHECK(f.has_customer_turns == (x->nturns > 0));
  if (x->nturns == 0)
    return;
  double sw = 0, sv = 0, ew = 0, ev = 0;
  size_t bare = 0;
  for (size_t i = 0; i < x->nturns; i++) {
    const gw_explain_turn *et = &x->turns[i];
    CHECK(et->index < n && t[et->index].speaker == GW_SPEAKER_CUSTOMER);
    if (i > 0)
      CHECK(et->index > x->turns[i - 1].index);
    bare += et->bare;
    sw += et->start_weight;
    sv += et->start_weight * et->felt;
    ew += et->end_weight;
    ev += et->end_weight * et->felt;
    if (et->start_weight > 0 || et->end_weight > 0) {
      CHECK(!et->bare || x->all_bare);
      CHECK(et->utterance < x->nutterances);
      if (et->utterance < x->nutterances) {
        const gw_explain_utterance *u = &x->utterances[et->utterance];
        gw_utterance_score s;
        gw_feeling_score_utterance(model, t[et->index].text, t[et->index].len, &s);
        CHECK(u->conversation && u->felt == et->felt && u->valence == et->valence);
        CHECK(et->felt_any == (u->felt_items > 0));
        check_explanation_adds_up(x, et->utterance, t[et->index].text, &s);
      }
    } else {
      CHECK(et->utterance == SIZE_MAX);
    }
  }
  CHECK(x->all_bare == (bare == x->nturns));
  CHECK(sw > 0 && ew > 0);
  CHECK_NEAR(sv / sw, f.start, 1e-12);
  CHECK_NEAR(ev / ew, f.end, 1e-12);
  CHECK(x->start == f.start && x->end == f.end && x->change == f.change);
  CHECK(x->band == 0.2 && x->change_min == 0.4);
  CHECK(f.start_polarity == (x->start <= -x->band  ? GW_POLARITY_NEGATIVE
                             : x->start >= x->band ? GW_POLARITY_POSITIVE
                                                   : GW_POLARITY_NEUTRAL));
  CHECK(f.end_polarity == (x->end <= -x->band  ? GW_POLARITY_NEGATIVE
                           : x->end >= x->band ? GW_POLARITY_POSITIVE
                                               : GW_POLARITY_NEUTRAL));
  CHECK(x->start_polarity == f.start_polarity && x->end_polarity == f.end_polarity);
  gw_change_direction want;
  if (f.start_polarity != f.end_polarity) {
    want = f.end_polarity > f.start_polarity ? GW_CHANGE_IMPROVED : GW_CHANGE_WORSENED;
    CHECK(x->direction_rule == 1);
  } else if (fabs(f.change) >= x->change_min) {
    want = f.change > 0 ? GW_CHANGE_IMPROVED : GW_CHANGE_WORSENED;
    CHECK(x->direction_rule == 2);
  } else {
    want = GW_CHANGE_UNCHANGED;
    CHECK(x->direction_rule == 0);
  }
  CHECK(f.change_direction == want && x->change_direction == want);
}

/* The step of rule r of the first hit whose entry is `entry`, or NULL. */
static const gw_explain_step *find_step(const gw_feeling_explain *x, const char *entry,
                                        gw_explain_rule r) {
  for (size_t i = 0; i < x->nhits; i++) {
    const gw_explain_hit *h = &x->hits[i];
    if (strcmp(x->arena + h->entry, entry) != 0)
      continue;
    for (size_t k = h->first_step; k < h->first_step + h->nsteps; k++)
      if (x->steps[k].rule == r)
        return &x->steps[k];
    return NULL;
  }
  return NULL;
}

static void test_explanations_add_up(void) {
  static const char *const texts[] = {
      "",
      "hello there",
      "This is NOT good at all, the agent was very rude but the refund came quickly!!",
      "great, just great. Is it any good? I am sooo angry :(",
      "This is the third time calling and it's STILL not working!!",
      "extremely incredibly absolutely amazing",
      "slightly barely hardly bad",
      "not bad, not bad at all",
      "I'm so sorry about that, I completely understand. Thank you for your patience.",
      "Why is this so slow??? Why???",
      "Is my refund approved? would it be good?",
      "GOOD service, TERRIBLE app",
      "THIS IS AWFUL",
      "Goooood job, veeery helpful \xF0\x9F\x91\x8D\xF0\x9F\x98\x80",
      "it\xE2\x80\x99s not working and I can\xE2\x80\x99t believe how bad it is",
      "hahahaha lololol that was fun :-) <3",
      "no problem, never been happier, couldn't be happier",
      "The product is great however the delivery was late and the box was damaged.",
      "I hate hate hate this, #fail @support you're useless",
      "Wonderful. Just wonderful. Another outage.",
      "kind of ok, sort of fine I guess",
      "I can't believe how good this is!!!!!!",
      "caf\xC3\xA9 was great, na\xC3\xAFve staff but lovely",
      "not\xFFgood \xFF angry",
      /* gw-feeling-0.4's conversational reading: formulas, descriptions, sarcasm markers,
       * lone comments, "another ...", resignation, hedges, shouting, questions, the past. */
      "thanks for nothing",
      "Great. Another week without internet. Really looking forward to that.",
      "fine, whatever, bye",
      "ok whatever",
      "I guess I'll have to live with it, I guess",
      "thanks I guess",
      "I called 2 HOURS ago and there is NOTHING at my door",
      "Being told it's our phones. Lovely.",
      "Lovely, that worked, thank you!",
      "thank you so much, you saved my weekend",
      "thank you, I was really panicking",
      "my internet is not working and the router keeps dropping",
      "no outage, no problem, ok thanks",
      "is it fountain pen friendly?",
      "Hi, good morning, I have a question about my bill",
      "ok",
      "\xF0\x9F\x99\x83 sure, great service",
      /* Category minimums: words of a category below its minimum hold it back. */
      "wtf is this",
      "this is a bit annoying and odd",
      "I'm worried and a little nervous",
  };
  gw_feeling_explain x;
  gw_feeling_explain_init(&x);
  for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++)
    check_explained(&x, texts[i]);
  /* Generated sentences: words, modifiers, negators, contrasts and punctuation in many
   * combinations (a fixed generator, so that failures repeat). */
  static const char *const words[] = {
      "good", "bad",    "very", "not",    "but", "awful", "GREAT", "sooo", "happy", "angry",
      "kind", "of",     "ok",   "thanks", ",",   "!",     "?",     "just", "is",    "it",
      "the",  "refund", "late", "never",  "so",  "sorry", "love",  "hate", "help",  "slightly"};
  uint32_t seed = 12345;
  char text[512];
  for (int n = 0; n < 2000; n++) {
    size_t len = 0;
    seed = seed * 1103515245u + 12345u;
    int nw = 1 + (int)((seed >> 16) % 14);
    for (int w = 0; w < nw; w++) {
      seed = seed * 1103515245u + 12345u;
      const char *word = words[(seed >> 16) % (sizeof(words) / sizeof(words[0]))];
      len += (size_t)snprintf(text + len, sizeof(text) - len, "%s%s", w ? " " : "", word);
    }
    check_explained(&x, text);
  }
  /* Generated interactions: customer turns of 0.4's cues (formulas, descriptions, sarcasm,
   * resignation, hedges, shouting, the past, bare turns) among agent turns. */
  static const char *const cues[] = {"thanks",
                                     "thank you so much",
                                     "ok",
                                     "bye",
                                     "hi",
                                     "not working",
                                     "still broken",
                                     "whatever",
                                     "fine",
                                     "another",
                                     "week",
                                     "I guess",
                                     "HOURS",
                                     "NOTHING",
                                     "was",
                                     "panicking",
                                     "great",
                                     "lovely",
                                     "terrible",
                                     "angry",
                                     "worried",
                                     "confused",
                                     "relieved",
                                     "thanks for nothing",
                                     "\xF0\x9F\x99\x83",
                                     "12345",
                                     "yes",
                                     "no",
                                     "is",
                                     "it",
                                     "good",
                                     "?",
                                     "!",
                                     ".",
                                     ",",
                                     "really"};
  char turn_text[8][256];
  size_t seen_rule[3] = {0}, seen_all_bare = 0, seen_plain = 0, seen_bare = 0, seen_sarcasm = 0,
         seen_held = 0, seen_felt_steps = 0;
  for (int n = 0; n < 1000; n++) {
    gw_turn_text turns[8];
    seed = seed * 1103515245u + 12345u;
    size_t nt = 1 + (seed >> 16) % 8;
    for (size_t k = 0; k < nt; k++) {
      seed = seed * 1103515245u + 12345u;
      turns[k].speaker = (seed >> 16) % 4 == 0 ? GW_SPEAKER_AGENT : GW_SPEAKER_CUSTOMER;
      size_t len = 0;
      seed = seed * 1103515245u + 12345u;
      int nw = (int)((seed >> 16) % 9);
      for (int w = 0; w < nw; w++) {
        seed = seed * 1103515245u + 12345u;
        const char *word = cues[(seed >> 16) % (sizeof(cues) / sizeof(cues[0]))];
        len += (size_t)snprintf(turn_text[k] + len, sizeof(turn_text[k]) - len, "%s%s",
                                w ? " " : "", word);
      }
      turn_text[k][len] = '\0';
      turns[k].text = turn_text[k];
      turns[k].len = len;
    }
    check_interaction_explained(&x, turns, nt);
    if (x.nturns == 0)
      continue;
    seen_rule[x.direction_rule < 3 ? x.direction_rule : 0]++;
    seen_all_bare += x.all_bare;
    for (size_t i = 0; i < x.nturns; i++) {
      seen_plain += x.turns[i].start_plain || x.turns[i].end_plain;
      seen_bare += x.turns[i].bare && !x.all_bare;
    }
    for (size_t u = 0; u < x.nutterances; u++) {
      for (int c = 0; c < GW_FEELING_COUNT; c++)
        seen_held += x.utterances[u].held_back[c];
      seen_felt_steps += x.utterances[u].nfelt_steps > 0;
    }
    for (size_t h = 0; h < x.nhits; h++)
      seen_sarcasm += (x.hits[h].felt_rules & GW_EXPLAIN_FELT_SARCASM) != 0;
  }
  /* The generator reaches every part of the conversational reading. */
  CHECK(seen_rule[0] > 0 && seen_rule[1] > 0 && seen_rule[2] > 0);
  CHECK(seen_all_bare > 0 && seen_plain > 0 && seen_bare > 0);
  CHECK(seen_sarcasm > 0 && seen_held > 0 && seen_felt_steps > 0);

  /* The rules name their cues as written. */
  check_explained(&x, "This is NOT good, but very rude staff!!");
  const gw_explain_step *st = find_step(&x, "good", GW_EXPLAIN_NEGATION);
  CHECK(st && st->factor == -0.75);
  if (st)
    CHECK_STR_EQ(x.arena + st->cue, "NOT");
  st = find_step(&x, "rude", GW_EXPLAIN_MODIFIER);
  CHECK(st && fabs(st->boost - 0.3) < 1e-6);
  if (st)
    CHECK_STR_EQ(x.arena + st->cue, "very");
  st = find_step(&x, "rude", GW_EXPLAIN_CONTRAST);
  CHECK(st && st->factor == 1.5);
  CHECK(x.nutterances == 1 && x.utterances[0].npunct == 1 &&
        x.steps[x.utterances[0].first_punct].count == 2);
  check_explained(&x, "great, just great");
  st = find_step(&x, "great", GW_EXPLAIN_SARCASM);
  CHECK(st != NULL);
  if (st)
    CHECK_STR_EQ(x.arena + st->cue, "just");
  check_explained(&x, "the app is goooood and AWFUL");
  CHECK(x.nhits == 2);
  if (x.nhits == 2) {
    CHECK_STR_EQ(x.arena + x.hits[0].text, "goooood");
    CHECK_STR_EQ(x.arena + x.hits[0].entry, "good");
    CHECK(x.hits[0].line > 0);
    CHECK(x.steps[x.hits[0].first_step].rule == GW_EXPLAIN_ELONGATION);
    CHECK(x.steps[x.hits[1].first_step].rule == GW_EXPLAIN_CAPS);
  }
  check_explained(&x, "This is the Third Time Calling");
  CHECK(x.nhits == 1);
  if (x.nhits == 1)
    CHECK_STR_EQ(x.arena + x.hits[0].text, "Third Time Calling");
  /* A question that asks, and extreme boosts clamped: each modifier keeps its share. */
  check_explained(&x, "is it any good?");
  CHECK(find_step(&x, "good", GW_EXPLAIN_QUESTION) != NULL);
  check_explained(&x, "VERY EXTREMELY INCREDIBLY good");
  double d = 0;
  for (size_t k = 0; k < x.nsteps; k++)
    d += x.steps[k].rule == GW_EXPLAIN_MODIFIER ? x.steps[k].delta : 0;
  CHECK(x.nhits == 1 && x.hits[0].nsteps == 3);
  if (x.nhits == 1)
    CHECK_NEAR(d, x.hits[0].valence * 1.0, 1e-9); /* the sum of boosts is clamped to 1.0 */

  /* JSON: one object, parseable shape checked by the goodwill-score system test. */
  gw_buf b = GW_BUF_INIT;
  CHECK_INT_EQ(gw_feeling_explain_json(&x, &b), 0);
  CHECK(b.len > 0 && b.data[0] == '{' && b.data[b.len - 1] == '}');
  CHECK_STR_CONTAINS(b.data, "\"rule\":\"modifier\",\"cue\":\"EXTREMELY\",\"boost\":0.54");
  gw_buf_free(&b);
  gw_feeling_explain_free(&x);
}

static void test_interaction_explanations(void) {
  gw_turn_text t[] = {
      {GW_SPEAKER_CUSTOMER, "This is the third time calling and it's still not working!", 0},
      {GW_SPEAKER_AGENT, "I'm so sorry about that. Let me fix it for you right now.", 0},
      {GW_SPEAKER_CUSTOMER, "I have been on hold for an hour, this is ridiculous", 0},
      {GW_SPEAKER_BOT, "Please rate us!", 0},
      {GW_SPEAKER_CUSTOMER, "ok", 0},
      {GW_SPEAKER_CUSTOMER, "oh that worked, great", 0},
      {GW_SPEAKER_CUSTOMER, "That fixed it, thank you so much!", 0},
      {GW_SPEAKER_CUSTOMER, "", 0},
      {GW_SPEAKER_CUSTOMER, "ok bye", 0},
      {GW_SPEAKER_CUSTOMER, "thanks", 0},
  };
  size_t n = sizeof(t) / sizeof(t[0]);
  for (size_t i = 0; i < n; i++)
    t[i].len = strlen(t[i].text);
  gw_interaction_feeling plain, f;
  gw_feeling_explain x;
  gw_feeling_explain_init(&x);
  check_interaction_explained(&x, t, n);
  gw_feeling_score_interaction(model, t, n, &plain);
  gw_feeling_score_interaction_explained(model, t, n, &f, &x);
  CHECK(memcmp(&plain, &f, sizeof(f)) == 0);
  CHECK(x.interaction && !x.failed);
  /* Customer turns with words: 0, 2, 4, 5, 6, 8, 9 (the empty turn 7 says nothing). */
  CHECK_INT_EQ(x.nturns, 7);
  double sw = 0, sv = 0, ew = 0, ev = 0;
  for (size_t i = 0; i < x.nturns; i++) {
    const gw_explain_turn *et = &x.turns[i];
    gw_utterance_score s;
    gw_feeling_score_utterance(model, t[et->index].text, t[et->index].len, &s);
    CHECK(t[et->index].speaker == GW_SPEAKER_CUSTOMER);
    CHECK(et->valence == s.valence);
    sw += et->start_weight;
    sv += et->start_weight * et->felt;
    ew += et->end_weight;
    ev += et->end_weight * et->felt;
    /* A turn with a weight carries its utterance's explanation, which adds up, felt valence
     * included; a bare turn has no weight. */
    if (et->start_weight > 0 || et->end_weight > 0) {
      CHECK(!et->bare || x.all_bare);
      CHECK(et->utterance < x.nutterances);
      if (et->utterance < x.nutterances) {
        CHECK(x.utterances[et->utterance].felt == et->felt);
        CHECK(et->felt_any == (x.utterances[et->utterance].felt_items > 0));
        CHECK(check_explanation_adds_up(&x, et->utterance, t[et->index].text, &s) > 0 ||
              s.valence == 0);
      }
    } else {
      CHECK(et->utterance == SIZE_MAX);
    }
  }
  /* Four informative turns: the start is the opening statement (it carries feeling, so it is
   * read alone); the end the last two informative turns (0.6 and 0.4); "ok", "ok bye" and
   * "thanks" are bare and left out. */
  CHECK(x.turns[0].index == 0 && x.turns[0].start_weight == 1.0 && x.turns[0].felt_any);
  CHECK(x.turns[1].index == 2 && x.turns[1].start_weight == 0 && x.turns[1].end_weight == 0);
  CHECK(x.turns[2].index == 4 && x.turns[2].bare && x.turns[2].start_weight == 0 &&
        x.turns[2].end_weight == 0);
  CHECK(x.turns[3].index == 5 && x.turns[3].end_weight == 0.4);
  CHECK(x.turns[4].index == 6 && x.turns[4].end_weight == 0.6);
  CHECK(x.turns[5].index == 8 && x.turns[5].bare && x.turns[5].end_weight == 0);
  CHECK(x.turns[6].index == 9 && x.turns[6].bare && x.turns[6].end_weight == 0);
  CHECK(!x.all_bare);
  CHECK_NEAR(sv / sw, f.start, 1e-12);
  CHECK_NEAR(ev / ew, f.end, 1e-12);
  /* The conversational band and the change direction. */
  CHECK(x.band == 0.2 && x.change_min == 0.4);
  CHECK(x.start == f.start && x.end == f.end && x.change == f.change);
  CHECK(x.start_polarity == gw_feeling_conversation_polarity(sv / sw));
  CHECK(x.end_polarity == gw_feeling_conversation_polarity(ev / ew));
  CHECK(x.start_polarity == f.start_polarity && x.end_polarity == f.end_polarity);
  CHECK(x.change_direction == f.change_direction);
  CHECK(f.start_polarity == GW_POLARITY_NEGATIVE && f.end_polarity == GW_POLARITY_POSITIVE);
  CHECK(f.change_direction == GW_CHANGE_IMPROVED && x.direction_rule == 1);
  /* Every turn bare: all are used, and the explanation says so. */
  {
    gw_feeling_explain y;
    gw_feeling_explain_init(&y);
    gw_turn_text bare[] = {{GW_SPEAKER_CUSTOMER, "ok", 2},
                           {GW_SPEAKER_AGENT, "Anything else?", 14},
                           {GW_SPEAKER_CUSTOMER, "thanks, bye", 11}};
    check_interaction_explained(&y, bare, 3);
    CHECK(y.all_bare && y.nturns == 2 && y.turns[0].bare && y.turns[1].bare);
    CHECK(y.turns[0].start_weight == 1.0 && y.turns[1].end_weight == 1.0);
    gw_buf jb = GW_BUF_INIT;
    CHECK_INT_EQ(gw_feeling_explain_json(&y, &jb), 0);
    CHECK(jb.data && strstr(jb.data, "\"all_bare\":true") != NULL);
    CHECK(jb.data && strstr(jb.data, "\"direction_by\":\"none\"") != NULL);
    gw_buf_free(&jb);
    gw_feeling_explain_free(&y);
  }
  /* The agent's strongest phrase of each kind, whose weighted sum is the empathy. */
  static const double weights[5] = {0.25, 0.25, 0.2, 0.2, 0.1};
  double empathy = 0;
  for (int k = 0; k < 5; k++) {
    empathy += weights[k] * x.agent_empathy[k].strength;
    if (x.agent_empathy[k].strength > 0)
      CHECK(x.agent_empathy_turn[k] == 1);
  }
  CHECK_NEAR(empathy, f.empathy, 1e-12);
  CHECK(x.agent_empathy[0].strength > 0 && x.agent_empathy[3].strength > 0);
  CHECK_STR_EQ(x.arena + x.agent_empathy[0].text, "I'm so sorry");
  CHECK_STR_EQ(x.arena + x.agent_empathy[3].text, "Let me fix");

  /* No customer turn: no customer feeling to explain, only the agent's empathy. */
  gw_feeling_score_interaction_explained(model, t + 1, 1, &f, &x);
  CHECK(x.interaction && x.nturns == 0 && x.nutterances == 0);
  gw_buf b = GW_BUF_INIT;
  CHECK_INT_EQ(gw_feeling_explain_json(&x, &b), 0);
  CHECK_STR_EQ(b.data, "{\"customer_turns\":[],\"agent_empathy\":[{\"turn\":0,\"text\":\"I'm so "
                       "sorry\",\"kind\":\"apology\",\"strength\":1.0,\"weight\":0.25},{"
                       "\"turn\":0,\"text\":\"Let me fix\",\"kind\":\"ownership\","
                       "\"strength\":0.9,\"weight\":0.2}]}");
  gw_buf_reset(&b);
  gw_feeling_score_interaction_explained(model, t + 3, 1, &f, &x);
  CHECK_INT_EQ(gw_feeling_explain_json(&x, &b), 0);
  CHECK_STR_EQ(b.data, "{\"customer_turns\":[]}");
  gw_buf_free(&b);
  gw_feeling_explain_free(&x);
}

/* --- loaders --- */

static void test_default_model_matches_the_data_file(void) {
  const char *src = getenv("GW_SOURCE_DIR");
  CHECK(src != NULL);
  if (!src)
    return;
  char path[1024];
  snprintf(path, sizeof(path), "%s/data/lexicon/goodwill-cx.tsv", src);
  gw_feeling_model *m = NULL;
  char err[256];
  int rc = gw_feeling_model_load(&m, path, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc == 0) {
    /* Same bytes embedded and on disk: same version string. */
    CHECK_STR_EQ(gw_feeling_model_version(m), gw_feeling_model_version(model));
    gw_feeling_model_free(m);
  }
  const char *v = gw_feeling_model_version(model);
  CHECK(strncmp(v, "gw-feeling-0.4+lex.", 19) == 0 && strlen(v) == 27);
  for (size_t i = 19; v[i]; i++)
    CHECK((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f'));
}

static void test_goodwill_format(void) {
  gw_feeling_model *m = NULL;
  char err[256];
  int rc = load_text("# goodwill-lexicon 1\n"
                     "\n"
                     "zorp\t3.5\tdelight:1\n"
                     "blarg\t-2\tanger:0.9,frustration:1\r\n"
                     "zorp it up\t-1.5\n"
                     ":-]\t2\n",
                     &m, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  gw_utterance_score s;
  gw_feeling_score_utterance(m, "zorp", 4, &s);
  CHECK(s.valence > 0.5 && s.feelings[GW_FEELING_DELIGHT] > 0.5);
  gw_feeling_score_utterance(m, "BLARG", 5, &s);
  CHECK(s.valence < -0.3 && s.feelings[GW_FEELING_ANGER] > 0 &&
        s.feelings[GW_FEELING_DELIGHT] == 0);
  gw_feeling_score_utterance(m, "zorp it up", 10, &s);
  CHECK(s.valence < -0.05); /* the phrase wins over its first word */
  gw_feeling_score_utterance(m, "nice :-]", 8, &s);
  CHECK(s.valence > 0.3); /* "nice" is not in this lexicon; the emoticon is */
  /* Another lexicon, another version hash. */
  CHECK(strcmp(gw_feeling_model_version(m), gw_feeling_model_version(model)) != 0);
  gw_feeling_model_free(m);
}

static void test_vader_format(void) {
  gw_feeling_model *m = NULL;
  char err[256];
  int rc = load_text("$:\t-1.5\t0.80623\t[-1, -1, -1, -1, -3, -1, -3, -1, -2, -1]\n"
                     "(-:\t1.6\t0.66332\t[2, 2, 1, 2, 1, 2, 2, 1, 2, 1]\n"
                     "#-)\t-0.5\t0.5\t[0, -1, 0, -1, 0, -1, 0, 0, -1, 0]\n"
                     "adorable\t2.2\t0.6\t[3, 2, 2, 3, 2, 2, 1, 3, 2, 2]\n"
                     "adorable\t9.9\t0.6\t[3]\n",
                     &m, err, sizeof(err));
  /* Foreign files keep the first of a duplicate; the second line is not even range-checked
   * against the first, but it is checked on its own: 9.9 is out of range. */
  CHECK_INT_EQ(rc, -EINVAL);
  CHECK_STR_CONTAINS(err, ":5:");
  CHECK_STR_CONTAINS(err, "-4..4");
  rc = load_text("$:\t-1.5\t0.80623\t[-1, -1, -1, -1, -3, -1, -3, -1, -2, -1]\n"
                 "(-:\t1.6\t0.66332\t[2, 2, 1, 2, 1, 2, 2, 1, 2, 1]\n"
                 "#-)\t-0.5\t0.5\t[0, -1, 0, -1, 0, -1, 0, 0, -1, 0]\n"
                 "adorable\t2.2\t0.6\t[3, 2, 2, 3, 2, 2, 1, 3, 2, 2]\n"
                 "adorable\t1.0\t0.6\t[1]\n",
                 &m, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  gw_utterance_score s;
  gw_feeling_score_utterance(m, "so adorable", 11, &s);
  CHECK(s.valence > 0.4);
  gw_feeling_score_utterance(m, "(-: yes", 7, &s);
  CHECK(s.valence > 0.3);
  gw_feeling_score_utterance(m, "hmm #-)", 7, &s);
  CHECK(s.valence < -0.05);
  gw_feeling_model_free(m);
  /* A line with the wrong shape names its line. */
  rc = load_text("good\t1.9\t0.5\t[2, 2]\nbad\t-2.5\n", &m, err, sizeof(err));
  CHECK_INT_EQ(rc, -EINVAL);
  CHECK_STR_CONTAINS(err, ":2:");
  CHECK_STR_CONTAINS(err, "VADER");
}

static void test_afinn_format(void) {
  gw_feeling_model *m = NULL;
  char err[256];
  int rc = load_text("abandon\t-2\nsuperb\t5\ndoes not work\t-3\n", &m, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  gw_utterance_score s;
  gw_feeling_score_utterance(m, "superb", 6, &s);
  double superb = s.valence;
  CHECK(superb > 0.5);
  gw_feeling_score_utterance(m, "it does not work", 16, &s);
  CHECK(s.valence < -0.3);
  gw_feeling_model_free(m);
  /* AFINN's -5..5 is mapped onto -4..4: an AFINN 5 equals a goodwill 4. */
  rc = load_text("superb\t4\tdelight:1\n", &m, err, sizeof(err));
  CHECK_INT_EQ(rc, 0);
  if (rc == 0) {
    gw_feeling_score_utterance(m, "superb", 6, &s);
    CHECK(s.valence > superb - 1e-6 && s.valence < superb + 1e-6);
    gw_feeling_model_free(m);
  }
  rc = load_text("good\t2\nbad\t-7\n", &m, err, sizeof(err));
  CHECK_INT_EQ(rc, -EINVAL);
  CHECK_STR_CONTAINS(err, ":2:");
  CHECK_STR_CONTAINS(err, "-5..5");
  rc = load_text("good\t2\nbad\t-2.5\n", &m, err, sizeof(err));
  CHECK_INT_EQ(rc, -EINVAL);
  CHECK_STR_CONTAINS(err, ":2:");
}

static void test_malformed_files(void) {
  gw_feeling_model *m = (gw_feeling_model *)&m; /* must be reset to NULL on failure */
  char err[256];
  struct {
    const char *text;
    const char *where;
    const char *why;
  } cases[] = {
      {"# goodwill-lexicon 1\ngood\t1\nbad\tminus two\n", ":3:", "valence"},
      {"# goodwill-lexicon 1\ngood\t1\nbad\t-9\n", ":3:", "-4..4"},
      {"# goodwill-lexicon 1\ngood\t1\nbad\t-2\tfury:0.5\n", ":3:", "unknown category"},
      {"# goodwill-lexicon 1\ngood\t1\nbad\t-2\tanger:1.5\n", ":3:", "0..1"},
      {"# goodwill-lexicon 1\ngood\t1\nbad\t-2\tanger\n", ":3:", "intensity"},
      {"# goodwill-lexicon 1\ngood\t1\nGood\t2\n", ":3:", "duplicate"},
      {"# goodwill-lexicon 1\ngood\t1\na b c d e f\t2\n", ":3:", "longer than 5 words"},
      {"# goodwill-lexicon 1\ngood\t1\nlonely\n", ":3:", "found 1"},
      {"# goodwill-lexicon 1\ngood\t1\n!! ??\t1\n", ":3:", "no words"},
      {"one\ttwo\tthree\tfour\tfive\tsix\n", ":1:", "too many"},
      {"good\n", ":1:", "cannot tell the lexicon format"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    int rc = load_text(cases[i].text, &m, err, sizeof(err));
    CHECK_INT_EQ(rc, -EINVAL);
    CHECK(m == NULL);
    CHECK_STR_CONTAINS(err, cases[i].where);
    CHECK_STR_CONTAINS(err, cases[i].why);
  }
}

static void test_empty_and_missing_files(void) {
  gw_feeling_model *m = NULL;
  char err[256];
  CHECK_INT_EQ(load_text("", &m, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "no entries");
  CHECK_INT_EQ(load_text("# only a comment\n\n", &m, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, "no entries");
  CHECK(m == NULL);
  CHECK_INT_EQ(gw_feeling_model_load(&m, "/nonexistent/lexicon.tsv", err, sizeof(err)), -ENOENT);
  CHECK_STR_CONTAINS(err, "/nonexistent/lexicon.tsv");
  CHECK(m == NULL);
}

static void test_scoring_is_deterministic(void) {
  const char *t = "I've been on hold FOREVER, but the agent was lovely :) thanks!!";
  gw_utterance_score a = score(t), b = score(t);
  CHECK(memcmp(&a, &b, sizeof(a)) == 0);
}

/* goodwill-score's line contract: the fast path for flat objects writes exactly what the
 * jansson path writes, and the lines it declines still get the contract's answers. */
static void test_json_line_fast_path_matches_jansson(void) {
  static const char *const lines[] = {
      "{\"id\":\"a\",\"text\":\"That fixed it, thank you so much :)\",\"n\":7,\"ok\":true}",
      "{ \"id\" : 2 , \"text\" : \"caf\xc3\xa9 was GREAT \xf0\x9f\x91\x8d!!\" }  ",
      "{\"text\":\"meh\",\"x\":null,\"y\":false,\"z\":-12,\"w\":0}",
      "{\"text\":\"\"}",
      "{\"text\":\"still not working\",\"n\":1.5}", /* real: jansson path */
      "{\"text\":\"she said \\\"no\\\"\"}",         /* escape: jansson path */
      "{\"text\":\"a\",\"text\":\"terrible\"}",     /* duplicate: last wins */
      "{\"text\":\"good\",\"valence\":9}",          /* replaced in place */
      "{\"text\":\"bad\xff\"}",                     /* invalid UTF-8 */
      "{\"text\":\"ok\",\"m\":-0}",                 /* -0 dumps as 0 */
      "{\"text\":42}",
      "{}",
      "[1,2]",
      "",
      "not json",
      "{\"id\":1,\"turns\":[{\"speaker\":\"customer\",\"text\":\"awful\"}]}",
  };
  for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
    gw_buf fast = GW_BUF_INIT, slow = GW_BUF_INIT;
    CHECK_INT_EQ(gw_feeling_json_line(model, lines[i], strlen(lines[i]), i + 1, 0, &fast), 0);
    CHECK_INT_EQ(gw_feeling_json_line(model, lines[i], strlen(lines[i]), i + 1,
                                      GW_FEELING_JSON_NO_FAST_PATH, &slow),
                 0);
    CHECK_STR_EQ(fast.data ? fast.data : "", slow.data ? slow.data : "");
    gw_buf_free(&fast);
    gw_buf_free(&slow);
  }
  /* The exact bytes of a fast-path answer: members kept in order, scores appended. */
  gw_buf out = GW_BUF_INIT;
  const char *line = "{\"id\": 1, \"text\": \"\", \"team\": \"t\"}";
  CHECK_INT_EQ(gw_feeling_json_line(model, line, strlen(line), 1, 0, &out), 0);
  CHECK_STR_EQ(out.data, "{\"id\":1,\"text\":\"\",\"team\":\"t\",\"valence\":0.0,"
                         "\"polarity\":\"neutral\",\"feelings\":{},\"empathy\":0.0}");
  gw_buf_free(&out);
}

/* Rules of the second model: each moves the score the way a reader would. */
static void test_idioms_sarcasm_laughter_and_colloquial_modifiers(void) {
  /* Negated comparatives praise: "never been happier" is the happiest, not unhappy. */
  CHECK(val("I have never been happier") > 0.3);
  CHECK(val("never been better") > 0.3);
  /* Disbelief emphasises ("can't believe how good"); a wish for better is a complaint. */
  CHECK(val("I can't believe how good this is") > 0.3);
  CHECK(val("I can't believe how bad this is") < -0.3);
  CHECK(val("could have been better") < -0.05);
  /* The sarcastic echo turns the word around; a plain "just great" stays positive, and a
   * lukewarm "good, just good enough" is no echo. */
  CHECK(val("great, just great") < -0.3);
  CHECK(val("Wonderful. Just wonderful.") < -0.3);
  CHECK(val("just great") > 0.3);
  CHECK(val("good, just good enough") > 0.05);
  /* Laughter of any length counts like "haha" / "lol". */
  CHECK(val("hahahaha") > 0.2);
  CHECK(val("lololol") > 0.2);
  CHECK(val("hahaha") > 0.2);
  /* Swearing as emphasis boosts instead of souring. */
  CHECK_LT(val("this is awesome"), val("this is fucking awesome"));
  CHECK_LT(val("that was freaking terrible"), val("that was terrible"));
  /* "least" negates, "at least" does not. */
  CHECK(val("my least favorite part") < -0.05);
  CHECK(val("at least it works") > 0.05);
  /* An emoticon glued to the word before it still counts. */
  CHECK_LT(val("that was great"), val("that was great:)"));
  CHECK(val("so tired:-(") < val("so tired"));
  /* A question that asks ("is it any good?") states less than the statement; one that
   * complains ("why is this so terrible?") keeps its complaint. */
  CHECK(val("is it any good?") > 0.05);
  CHECK_LT(val("is it any good?"), val("it is any good"));
  CHECK_LT(val("Is the refund approved?"), val("The refund is approved."));
  CHECK(val("why is this so terrible?") < val("is this so terrible?"));
  /* "rarely"/"seldom" negate like "never". */
  CHECK(val("I rarely enjoy these") < -0.05);
}

/* The loader derives regular inflections of the project's own format, not of foreign ones,
 * and an explicit entry (valence 0 included) wins over a derived form. */
static void test_inflections_are_derived(void) {
  char path[64];
  write_tmp(path, "# goodwill-lexicon 1\nzorp\t2.5\nblarg\t-2.5\nzorps\t0\nfuzzy\t1.5\n");
  gw_feeling_model *m = NULL;
  char err[256];
  CHECK_INT_EQ(gw_feeling_model_load(&m, path, err, sizeof(err)), 0);
  unlink(path);
  gw_utterance_score s;
  const char *pos[] = {"zorped", "zorping", "zorply", "fuzzily", "fuzzies", "fuzzied"};
  for (size_t i = 0; m && i < sizeof(pos) / sizeof(pos[0]); i++) {
    gw_feeling_score_utterance(m, pos[i], strlen(pos[i]), &s);
    CHECK(s.valence > 0.3);
  }
  const char *neg[] = {"blarged", "blarging", "blargs"};
  for (size_t i = 0; m && i < sizeof(neg) / sizeof(neg[0]); i++) {
    gw_feeling_score_utterance(m, neg[i], strlen(neg[i]), &s);
    CHECK(s.valence < -0.3);
  }
  if (m) {
    gw_feeling_score_utterance(m, "zorps", 5, &s);
    CHECK(s.valence == 0);
  }
  gw_feeling_model_free(m);
  /* AFINN-style: scored as written, nothing derived. */
  write_tmp(path, "zorp\t4\n");
  CHECK_INT_EQ(gw_feeling_model_load(&m, path, err, sizeof(err)), 0);
  unlink(path);
  if (m) {
    gw_feeling_score_utterance(m, "zorped", 6, &s);
    CHECK(s.valence == 0);
  }
  gw_feeling_model_free(m);
}

/* Big lexicons: many entries load (a user's own file may be large), a file over the 16 MiB
 * limit and a line over 4096 bytes are refused with the reason and, for the line, its
 * number. */
static void test_huge_lexicons(void) {
  gw_feeling_model *m = NULL;
  char err[256];
  size_t n = 200000;
  gw_buf b = GW_BUF_INIT;
  gw_buf_puts(&b, "# goodwill-lexicon 1\n");
  for (size_t i = 0; i < n; i++)
    gw_buf_printf(&b, "w%zu\t%d\n", i, (int)(i % 9) - 4);
  gw_buf_puts(&b, "w7x\t3.5\n");
  CHECK_INT_EQ(load_text(b.data, &m, err, sizeof(err)), 0);
  if (m) {
    gw_utterance_score sc;
    gw_feeling_score_utterance(m, "w7x", 3, &sc);
    CHECK(sc.valence > 0.5);
    gw_feeling_score_utterance(m, "w4", 2, &sc); /* 4 % 9 - 4 = 0: neutral */
    CHECK(sc.valence == 0);
    gw_feeling_score_utterance(m, "w199999", 7, &sc); /* 199999 % 9 - 4 = -3 */
    CHECK(sc.valence < -0.5);
  }
  gw_feeling_model_free(m);
  m = NULL;

  gw_buf_reset(&b);
  gw_buf_puts(&b, "good\t2\n");
  for (int i = 0; i < 5000; i++)
    gw_buf_putc(&b, 'x');
  gw_buf_puts(&b, "\t1\n");
  CHECK_INT_EQ(load_text(b.data, &m, err, sizeof(err)), -EINVAL);
  CHECK_STR_CONTAINS(err, ":2:");
  CHECK_STR_CONTAINS(err, "longer than 4096");
  CHECK(m == NULL);

  gw_buf_reset(&b);
  while (b.len <= 16u * 1024u * 1024u)
    gw_buf_puts(&b, "# padding line of a lexicon that is too big to load at all\n");
  CHECK_INT_EQ(load_text(b.data, &m, err, sizeof(err)), -EFBIG);
  CHECK_STR_CONTAINS(err, "larger than");
  CHECK(m == NULL);
  gw_buf_free(&b);
}

/* --- the lexicon overlay (docs/FEELING_MODEL.md, "Customisation") --- */

/* The version an overlay must give: the base's, then "+overlay." and 12 hex digits of the
 * overlay's SHA-256, computed here apart from the loader. */
static void overlaid_version(const char *base, const char *overlay, char *out, size_t outlen) {
  char hex[GW_SHA256_HEX_LEN + 1];
  gw_sha256_hex(overlay, strlen(overlay), hex);
  snprintf(out, outlen, "%s+overlay.%.12s", base, hex);
}

static const char overlay_text[] = "# contact center overlay\n"
                                   "zorblax\t2.5\tdelight:1\n"
                                   "glitchmaster 3000\t-2\tfrustration:1\n"
                                   "nightmare\t-1\tsadness:0.5\n"
                                   "refund\t0\n"
                                   "third time calling\t0\n";

static void test_overlay_adds_replaces_and_neutralises(void) {
  gw_feeling_model *m = NULL;
  char err[256];
  /* No overlay: the default model itself. */
  CHECK_INT_EQ(gw_feeling_model_load_overlaid(&m, NULL, NULL, err, sizeof(err)), 0);
  if (m)
    CHECK_STR_EQ(gw_feeling_model_version(m), gw_feeling_model_version(model));
  gw_feeling_model_free(m);
  m = NULL;

  char path[64];
  write_tmp(path, overlay_text);
  int rc = gw_feeling_model_load_overlaid(&m, NULL, path, err, sizeof(err));
  unlink(path);
  CHECK_INT_EQ(rc, 0);
  if (rc != 0) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  gw_utterance_score s, b;
  /* Added: a product name and a phrase the base does not know; derived forms follow the word. */
  CHECK(val("zorblax") == 0);
  gw_feeling_score_utterance(m, "zorblax", 7, &s);
  CHECK(s.valence > 0.5 && s.feelings[GW_FEELING_DELIGHT] > 0.5);
  CHECK(val_in(m, "it keeps zorblaxing") > 0.3);
  CHECK(val_in(m, "the glitchmaster 3000 again") < -0.3);
  CHECK(val_in(m, "the glitchmaster") == 0); /* a phrase, not its words */
  /* Replaced as a whole: the valence, and the categories (the base's frustration is gone). */
  gw_feeling_score_utterance(model, "nightmare", 9, &b);
  gw_feeling_score_utterance(m, "nightmare", 9, &s);
  CHECK(b.valence < -0.5 && b.feelings[GW_FEELING_FRUSTRATION] > 0);
  CHECK(s.valence < -0.05 && s.valence > b.valence);
  CHECK(s.feelings[GW_FEELING_FRUSTRATION] == 0 && s.feelings[GW_FEELING_SADNESS] > 0);
  /* Neutralised by valence 0: a word and a phrase of the base score nothing. */
  CHECK(val("refund") > 0.05);
  CHECK(val_in(m, "refund") == 0);
  CHECK(val("third time calling") < -0.3);
  CHECK(val_in(m, "third time calling") == 0);
  /* Everything else is the base's, to the bit. */
  const char *same[] = {"awful", "thank you so much :)", "terrible service", "not good",
                        "I've been on hold FOREVER, but the agent was lovely"};
  for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
    gw_feeling_score_utterance(model, same[i], strlen(same[i]), &b);
    gw_feeling_score_utterance(m, same[i], strlen(same[i]), &s);
    CHECK(memcmp(&b, &s, sizeof(b)) == 0);
  }
  gw_feeling_model_free(m);
}

static void test_overlay_changes_the_version(void) {
  const char *base = gw_feeling_model_version(model);
  char want[128];
  char err[256];
  gw_feeling_model *m = NULL, *m2 = NULL, *e = NULL, *plain = NULL, *o = NULL;
  char path[64];
  write_tmp(path, overlay_text);
  CHECK_INT_EQ(gw_feeling_model_load_overlaid(&m, NULL, path, err, sizeof(err)), 0);
  unlink(path);
  overlaid_version(base, overlay_text, want, sizeof(want));
  if (m) {
    CHECK_STR_EQ(gw_feeling_model_version(m), want);
    CHECK(strlen(gw_feeling_model_version(m)) < GW_FEELING_VERSION_MAX);
  }
  /* One byte more in the overlay, another version. */
  char changed[sizeof(overlay_text) + 8];
  snprintf(changed, sizeof(changed), "%s\n", overlay_text);
  write_tmp(path, changed);
  CHECK_INT_EQ(gw_feeling_model_load_overlaid(&m2, NULL, path, err, sizeof(err)), 0);
  unlink(path);
  if (m && m2)
    CHECK(strcmp(gw_feeling_model_version(m), gw_feeling_model_version(m2)) != 0);
  /* An empty overlay is allowed: it scores as the base, and the version says it was merged. */
  write_tmp(path, "");
  CHECK_INT_EQ(gw_feeling_model_load_overlaid(&e, NULL, path, err, sizeof(err)), 0);
  unlink(path);
  overlaid_version(base, "", want, sizeof(want));
  if (e) {
    CHECK_STR_EQ(gw_feeling_model_version(e), want);
    CHECK(val_in(e, "terrible") == val("terrible"));
  }
  /* The same overlay over another base (in memory): the base's part of the version differs. */
  const char *base_data = "# goodwill-lexicon 1\ngood\t2\n";
  CHECK_INT_EQ(
      gw_feeling_model_parse(&plain, "base.tsv", base_data, strlen(base_data), err, sizeof(err)),
      0);
  CHECK_INT_EQ(gw_feeling_model_parse_overlaid(&o, "base.tsv", base_data, strlen(base_data),
                                               "overlay.tsv", overlay_text, strlen(overlay_text),
                                               err, sizeof(err)),
               0);
  if (o && plain) {
    overlaid_version(gw_feeling_model_version(plain), overlay_text, want, sizeof(want));
    CHECK_STR_EQ(gw_feeling_model_version(o), want);
    CHECK(val_in(o, "good") > 0.3 && val_in(o, "zorblax") > 0.5);
  }
  gw_feeling_model_free(o);
  gw_feeling_model_free(plain);
  gw_feeling_model_free(e);
  gw_feeling_model_free(m);
  gw_feeling_model_free(m2);
}

/* A foreign base keeps scoring as written (nothing derived), and the overlay is read in the
 * goodwill format whatever the base's. */
static void test_overlay_over_a_foreign_lexicon(void) {
  gw_feeling_model *m = NULL;
  char err[256];
  const char *afinn = "zorp\t4\nblarg\t-3\n";
  const char *overlay = "blarg\t0\nfrob\t-2.5\tanger:1\n";
  CHECK_INT_EQ(gw_feeling_model_parse_overlaid(&m, "afinn.txt", afinn, strlen(afinn), "overlay.tsv",
                                               overlay, strlen(overlay), err, sizeof(err)),
               0);
  if (!m) {
    fprintf(stderr, "  %s\n", err);
    return;
  }
  CHECK(val_in(m, "zorp") > 0.5);
  CHECK(val_in(m, "blarg") == 0);
  CHECK(val_in(m, "frob") < -0.5);
  CHECK(val_in(m, "frobbed") == 0 && val_in(m, "frobs") == 0);
  gw_feeling_model_free(m);
}

/* A bad overlay is refused as a bad lexicon is: the overlay's file, its line and the reason,
 * and no model. */
static void test_bad_overlays_name_file_and_line(void) {
  struct {
    const char *text;
    const char *where;
    const char *why;
  } cases[] = {
      {"zorblax\t2\nwidget\tnine\n", ":2:", "valence must be a number in -4..4, got \"nine\""},
      {"# ok\nzorp\t1\n\nZorp\t2\n",
       ":4:", "duplicate entry \"zorp\" in the overlay (first on line 2)"},
      {"zorp\t1.5\t0.3\t[1, 2]\n", ":1:", "expected token<TAB>valence[<TAB>categories]"},
      {"zorp\t1\tfury:1\n", ":1:", "unknown category \"fury\""},
      {"zorp\t1\nzorp\n", ":2:", "found 1 field(s)"},
      {"a b c d e f\t1\n", ":1:", "longer than 5 words"},
      {"zorp\t5\n", ":1:", "-4..4"},
  };
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    gw_feeling_model *m = (gw_feeling_model *)&m; /* must be reset to NULL on failure */
    char err[256] = "", path[64], where[128];
    write_tmp(path, cases[i].text);
    int rc = gw_feeling_model_load_overlaid(&m, NULL, path, err, sizeof(err));
    unlink(path);
    CHECK_INT_EQ(rc, -EINVAL);
    CHECK(m == NULL);
    snprintf(where, sizeof(where), "%s%s", path, cases[i].where);
    CHECK_STR_CONTAINS(err, where);
    CHECK_STR_CONTAINS(err, cases[i].why);
  }
  gw_feeling_model *m = NULL;
  char err[256];
  CHECK_INT_EQ(
      gw_feeling_model_load_overlaid(&m, NULL, "/nonexistent/overlay.tsv", err, sizeof(err)),
      -ENOENT);
  CHECK_STR_CONTAINS(err, "/nonexistent/overlay.tsv: cannot open");
  CHECK(m == NULL);
  /* A broken base is named as the base, even with a good overlay. */
  char base[64], overlay[64];
  write_tmp(base, "# goodwill-lexicon 1\ngood\t1\nbad\tx\n");
  write_tmp(overlay, "zorp\t1\n");
  CHECK_INT_EQ(gw_feeling_model_load_overlaid(&m, base, overlay, err, sizeof(err)), -EINVAL);
  char where[128];
  snprintf(where, sizeof(where), "%s:3:", base);
  CHECK_STR_CONTAINS(err, where);
  unlink(base);
  unlink(overlay);
  /* Over the size limit: refused before a byte is read. */
  static const char tiny[] = "zorp\t1\n";
  CHECK_INT_EQ(gw_feeling_model_parse_overlaid(&m, "base.tsv", tiny, strlen(tiny), "big.tsv", tiny,
                                               (size_t)17 << 20, err, sizeof(err)),
               -EFBIG);
  CHECK_STR_CONTAINS(err, "big.tsv: larger than");
  CHECK(m == NULL);
}

int main(void) {
  char err[256];
  int rc = gw_feeling_model_load(&model, NULL, err, sizeof(err));
  if (rc != 0) {
    fprintf(stderr, "cannot load the default lexicon: %s\n", err);
    return 1;
  }
  GW_RUN(test_polarity_thresholds);
  GW_RUN(test_plain_words_have_their_sign);
  GW_RUN(test_valence_is_bounded);
  GW_RUN(test_negation_flips);
  GW_RUN(test_negated_feeling_is_not_expressed);
  GW_RUN(test_phrases_beat_word_rules);
  GW_RUN(test_intensifiers_and_dampeners);
  GW_RUN(test_contrast_weighs_the_after_clause);
  GW_RUN(test_caps_emphasis_needs_contrast);
  GW_RUN(test_exclamation_and_questions_emphasise);
  GW_RUN(test_elongation);
  GW_RUN(test_word_shapes_score_alike);
  GW_RUN(test_emoticons_and_emoji);
  GW_RUN(test_tokenizer_utf8);
  GW_RUN(test_feeling_categories);
  GW_RUN(test_categories_need_evidence);
  GW_RUN(test_category_weights_follow_definitions);
  GW_RUN(test_category_intensity_follows_strength);
  GW_RUN(test_category_evidence_threshold);
  GW_RUN(test_agent_empathy);
  GW_RUN(test_interaction_recovered);
  GW_RUN(test_interaction_soured_and_trailing_closing);
  GW_RUN(test_interaction_edge_cases);
  GW_RUN(test_conversation_politeness_is_not_a_feeling);
  GW_RUN(test_conversation_sarcasm_and_resignation);
  GW_RUN(test_conversation_genuine_delight);
  GW_RUN(test_conversation_start_and_end_turns);
  GW_RUN(test_explanations_add_up);
  GW_RUN(test_interaction_explanations);
  GW_RUN(test_default_model_matches_the_data_file);
  GW_RUN(test_goodwill_format);
  GW_RUN(test_vader_format);
  GW_RUN(test_afinn_format);
  GW_RUN(test_malformed_files);
  GW_RUN(test_empty_and_missing_files);
  GW_RUN(test_scoring_is_deterministic);
  GW_RUN(test_json_line_fast_path_matches_jansson);
  GW_RUN(test_idioms_sarcasm_laughter_and_colloquial_modifiers);
  GW_RUN(test_inflections_are_derived);
  GW_RUN(test_huge_lexicons);
  GW_RUN(test_overlay_adds_replaces_and_neutralises);
  GW_RUN(test_overlay_changes_the_version);
  GW_RUN(test_overlay_over_a_foreign_lexicon);
  GW_RUN(test_bad_overlays_name_file_and_line);
  GW_RUN(test_long_words_hashtags_and_word_blocks);
  gw_feeling_model_free(model);
  return gw_test_finish();
}
