/*
 * The feeling model's built-in rule words (docs/FEELING_MODEL.md, "Lexicon", rule words):
 * negators, boosters and dampeners, contrast words, the echo word of sarcasm, closing words and
 * agent empathy phrases. They are entries of the lexicon's table like any other, added before
 * the lexicon file is read, so they work with every lexicon a user plugs in.
 */
#include "lexicon.h"

#include <errno.h>
#include <string.h>

/* Built-in rule words. They are grammar rather than vocabulary, so they do not depend on the
 * lexicon a user plugs in. Written for this project. */

typedef struct gw_rule_word {
  const char *key;
  float value;
} gw_rule_word;

static const char *const gw_negators[] = {
    "not",      "no",        "never",      "nothing", "nobody",  "none",     "nor",
    "neither",  "without",   "cannot",     "dont",    "cant",    "wont",     "didnt",
    "doesnt",   "isnt",      "wasnt",      "arent",   "werent",  "couldnt",  "shouldnt",
    "wouldnt",  "havent",    "hasnt",      "hadnt",   "aint",    "nowhere",  "no one",
    "not even", "no longer", "not at all", "don't",   "can't",   "won't",    "didn't",
    "doesn't",  "isn't",     "wasn't",     "aren't",  "weren't", "couldn't", "shouldn't",
    "wouldn't", "haven't",   "hasn't",     "hadn't",  "ain't",   "mustn't",  "needn't",
    "mightn't", "shan't",    "rarely",     "seldom",  "least"};

static const gw_rule_word gw_boosters[] = {
    {"very", 0.3f},
    {"really", 0.3f},
    {"so", 0.3f},
    {"so much", 0.3f},
    {"extremely", 0.45f},
    {"incredibly", 0.45f},
    {"absolutely", 0.4f},
    {"totally", 0.35f},
    {"completely", 0.35f},
    {"utterly", 0.4f},
    {"super", 0.3f},
    {"truly", 0.3f},
    {"seriously", 0.3f},
    {"highly", 0.3f},
    {"too", 0.2f},
    {"such", 0.2f},
    {"especially", 0.25f},
    {"exceptionally", 0.4f},
    {"remarkably", 0.3f},
    {"pretty", 0.15f},
    {"way too", 0.4f},
    {"the most", 0.3f},
    {"so so", 0.4f},
    {"insanely", 0.45f},
    {"ridiculously", 0.4f},
    {"beyond", 0.3f},
    {"deeply", 0.35f},
    {"hugely", 0.4f},
    {"massively", 0.4f},
    {"entirely", 0.3f},
    {"thoroughly", 0.3f},
    {"genuinely", 0.25f},
    {"slightly", -0.4f},
    {"somewhat", -0.3f},
    {"kind of", -0.3f},
    {"sort of", -0.3f},
    {"kinda", -0.3f},
    {"sorta", -0.3f},
    {"a bit", -0.3f},
    {"a little", -0.3f},
    {"a little bit", -0.35f},
    {"a tad", -0.35f},
    {"barely", -0.5f},
    {"hardly", -0.5f},
    {"marginally", -0.4f},
    {"partly", -0.3f},
    {"partially", -0.3f},
    {"fairly", -0.15f},
    {"mildly", -0.4f},
    {"a touch", -0.3f},
    /* Swearing as emphasis ("fucking awesome"), and colloquial boosters. */
    {"fucking", 0.4f},
    {"fuckin", 0.4f},
    {"freaking", 0.35f},
    {"freakin", 0.35f},
    {"frickin", 0.35f},
    {"friggin", 0.35f},
    {"hella", 0.35f},
    {"soo", 0.35f},
    {"rly", 0.3f},
    {"realy", 0.3f},
    {"enormously", 0.4f},
    {"tremendously", 0.4f},
    {"unbelievably", 0.4f},
    {"immensely", 0.4f},
    {"intensely", 0.35f},
    {"exceedingly", 0.4f},
    {"wildly", 0.35f},
    {"particularly", 0.2f},
    {"fully", 0.25f},
    {"most", 0.2f},
    {"almost", -0.3f},
    {"nearly", -0.3f},
    {"relatively", -0.2f},
    {"moderately", -0.3f},
    {"occasionally", -0.3f},
    {"scarcely", -0.5f},
    /* "at least" is not the negator "least" ("least favourite"): a modifier of no strength. */
    {"at least", 0.0f},
    {"the very least", 0.0f},
    /* Disbelief emphasises, it does not negate: "I can't believe how good this is". */
    {"can't believe", 0.3f},
    {"cant believe", 0.3f},
    {"cannot believe", 0.3f},
    {"couldn't believe", 0.3f},
};

static const char *const gw_contrasts[] = {"but", "however"};

static const char *const gw_echoes[] = {"just"};

/* Short low-information replies ("ok.", "thanks", "great, bye"): see the interaction rules. */
static const char *const gw_closings[] = {
    "ok",    "okay", "k",          "kk",          "thanks",     "thank",  "you",
    "thx",   "ty",   "bye",        "goodbye",     "bye-bye",    "yes",    "yeah",
    "yep",   "yup",  "no",         "nope",        "alright",    "sure",   "cheers",
    "great", "cool", "fine",       "perfect",     "got",        "it",     "that's",
    "all",   "good", "right",      "sounds",      "will",       "do",     "hi",
    "hello", "hey",  "have",       "a",           "nice",       "day",    "thankyou",
    "much",  "very", "so",         "appreciated", "ta",         "oh",     "ah",
    "i",     "see",  "understood", "np",          "mm",         "hmm",    "mhm",
    "uh",    "um",   "wow",        "awesome",     "excellent",  "lovely", "that",
    "is",    "was",  "will",       "do",          "for",        "your",   "help",
    "now",   "then", "well",       "anyway",      "everything", "thats",  "well",
    "cya",   "later"};

/* Closing words too: answers that carry nothing of their own in a conversation ("done",
 * "noted"), so that a turn made of them is bare (docs/FEELING_MODEL.md, "Interaction
 * feeling"). */
static const char *const gw_conv_closings[] = {
    /* confirming */
    "done", "noted", "received", "confirmed", "correct",
    /* courtesy */
    "please", "sorry"};

typedef struct gw_empathy_phrase {
  const char *key;
  gw_empathy_kind kind;
  float strength;
} gw_empathy_phrase;

static const gw_empathy_phrase gw_empathy_phrases[] = {
    {"sorry", E_APOLOGY, 0.6f},
    {"i'm sorry", E_APOLOGY, 0.9f},
    {"i am sorry", E_APOLOGY, 0.9f},
    {"i'm so sorry", E_APOLOGY, 1.0f},
    {"i'm really sorry", E_APOLOGY, 1.0f},
    {"so sorry", E_APOLOGY, 0.9f},
    {"i apologize", E_APOLOGY, 1.0f},
    {"i apologise", E_APOLOGY, 1.0f},
    {"we apologize", E_APOLOGY, 0.8f},
    {"we apologise", E_APOLOGY, 0.8f},
    {"apologies", E_APOLOGY, 0.8f},
    {"my apologies", E_APOLOGY, 0.9f},
    {"sorry about that", E_APOLOGY, 0.9f},
    {"sorry to hear", E_APOLOGY, 0.9f},
    {"sorry for the inconvenience", E_APOLOGY, 0.6f},
    {"i understand", E_ACKNOWLEDGE, 0.8f},
    {"i can understand", E_ACKNOWLEDGE, 0.9f},
    {"i completely understand", E_ACKNOWLEDGE, 1.0f},
    {"i totally understand", E_ACKNOWLEDGE, 1.0f},
    {"i understand how", E_ACKNOWLEDGE, 1.0f},
    {"i understand why", E_ACKNOWLEDGE, 1.0f},
    {"that must be frustrating", E_ACKNOWLEDGE, 1.0f},
    {"that sounds frustrating", E_ACKNOWLEDGE, 1.0f},
    {"that must be", E_ACKNOWLEDGE, 0.6f},
    {"that sounds really", E_ACKNOWLEDGE, 0.6f},
    {"i can see why", E_ACKNOWLEDGE, 0.9f},
    {"i can imagine", E_ACKNOWLEDGE, 0.9f},
    {"i hear you", E_ACKNOWLEDGE, 0.9f},
    {"you're right", E_ACKNOWLEDGE, 0.8f},
    {"you are right", E_ACKNOWLEDGE, 0.8f},
    {"you're absolutely right", E_ACKNOWLEDGE, 1.0f},
    {"understandably", E_ACKNOWLEDGE, 0.8f},
    {"that shouldn't have happened", E_ACKNOWLEDGE, 1.0f},
    {"that's not okay", E_ACKNOWLEDGE, 0.8f},
    {"i get it", E_ACKNOWLEDGE, 0.7f},
    {"makes sense", E_ACKNOWLEDGE, 0.4f},
    {"don't worry", E_REASSURE, 0.8f},
    {"no worries", E_REASSURE, 0.5f},
    {"rest assured", E_REASSURE, 0.9f},
    {"i'll make sure", E_REASSURE, 0.9f},
    {"i will make sure", E_REASSURE, 0.9f},
    {"we'll get this sorted", E_REASSURE, 1.0f},
    {"let's get this sorted", E_REASSURE, 1.0f},
    {"let's get this fixed", E_REASSURE, 1.0f},
    {"let's fix this", E_REASSURE, 0.9f},
    {"we'll fix", E_REASSURE, 0.8f},
    {"we can fix", E_REASSURE, 0.8f},
    {"i can fix", E_REASSURE, 0.9f},
    {"i can help", E_REASSURE, 0.8f},
    {"happy to help", E_REASSURE, 0.7f},
    {"glad to help", E_REASSURE, 0.7f},
    {"good news", E_REASSURE, 0.7f},
    {"you're in good hands", E_REASSURE, 1.0f},
    {"we'll take care", E_REASSURE, 0.9f},
    {"i'll take care of", E_OWNERSHIP, 1.0f},
    {"i will take care of", E_OWNERSHIP, 1.0f},
    {"let me fix", E_OWNERSHIP, 0.9f},
    {"let me check", E_OWNERSHIP, 0.6f},
    {"let me look into", E_OWNERSHIP, 0.8f},
    {"let me see what", E_OWNERSHIP, 0.6f},
    {"i'll personally", E_OWNERSHIP, 1.0f},
    {"i will personally", E_OWNERSHIP, 1.0f},
    {"i'll follow up", E_OWNERSHIP, 0.9f},
    {"i will follow up", E_OWNERSHIP, 0.9f},
    {"i'll call you back", E_OWNERSHIP, 0.8f},
    {"i've escalated", E_OWNERSHIP, 0.8f},
    {"i have escalated", E_OWNERSHIP, 0.8f},
    {"that's on us", E_OWNERSHIP, 1.0f},
    {"our mistake", E_OWNERSHIP, 1.0f},
    {"my mistake", E_OWNERSHIP, 0.9f},
    {"our fault", E_OWNERSHIP, 1.0f},
    {"we made a mistake", E_OWNERSHIP, 1.0f},
    {"i've fixed", E_OWNERSHIP, 0.9f},
    {"i have fixed", E_OWNERSHIP, 0.9f},
    {"i've refunded", E_OWNERSHIP, 0.9f},
    {"i have refunded", E_OWNERSHIP, 0.9f},
    {"i've credited", E_OWNERSHIP, 0.9f},
    {"i've reset", E_OWNERSHIP, 0.7f},
    {"thank you", E_THANKS, 0.6f},
    {"thanks", E_THANKS, 0.5f},
    {"thank you for your patience", E_THANKS, 1.0f},
    {"thanks for your patience", E_THANKS, 1.0f},
    {"thank you for waiting", E_THANKS, 0.9f},
    {"thanks for waiting", E_THANKS, 0.9f},
    {"appreciate your patience", E_THANKS, 1.0f},
    {"i appreciate", E_THANKS, 0.8f},
    {"thank you for bearing", E_THANKS, 1.0f},
    {"thanks for bearing", E_THANKS, 1.0f},
    {"for letting us know", E_THANKS, 0.9f},
};

static int gw_load_rule(gw_feeling_model *m, const char *k, unsigned kind, float value,
                        gw_empathy_kind ek) {
  char key[GW_PHRASE_KEY_BYTES];
  size_t keylen;
  int symbol;
  int ntok = gw_lex_entry_key(k, strlen(k), key, &keylen, &symbol);
  if (ntok <= 0)
    return -EINVAL;
  gw_lex_entry *e;
  int rc = gw_lex_upsert(m, key, keylen, (unsigned)ntok, &e);
  if (rc < 0)
    return rc;
  e->kind |= (uint8_t)kind;
  if (kind & K_BOOST)
    e->boost = value;
  if (kind & K_EMPATHY) {
    e->empathy = value;
    e->empathy_kind = (uint8_t)ek;
  }
  if (!symbol && (rc = gw_lex_add_prefixes(m, key, keylen, kind)) < 0)
    return rc;
  return 0;
}

int gw_lex_add_rules(gw_feeling_model *m) {
  int rc = 0;
  for (size_t i = 0; i < GW_NELEM(gw_negators) && rc == 0; i++)
    rc = gw_load_rule(m, gw_negators[i], K_NEGATOR, 0, 0);
  for (size_t i = 0; i < GW_NELEM(gw_boosters) && rc == 0; i++)
    rc = gw_load_rule(m, gw_boosters[i].key, K_BOOST, gw_boosters[i].value, 0);
  for (size_t i = 0; i < GW_NELEM(gw_contrasts) && rc == 0; i++)
    rc = gw_load_rule(m, gw_contrasts[i], K_CONTRAST, 0, 0);
  for (size_t i = 0; i < GW_NELEM(gw_echoes) && rc == 0; i++)
    rc = gw_load_rule(m, gw_echoes[i], K_ECHO, 0, 0);
  for (size_t i = 0; i < GW_NELEM(gw_closings) && rc == 0; i++)
    rc = gw_load_rule(m, gw_closings[i], K_CLOSING, 0, 0);
  for (size_t i = 0; i < GW_NELEM(gw_conv_closings) && rc == 0; i++)
    rc = gw_load_rule(m, gw_conv_closings[i], K_CLOSING, 0, 0);
  for (size_t i = 0; i < GW_NELEM(gw_empathy_phrases) && rc == 0; i++)
    rc = gw_load_rule(m, gw_empathy_phrases[i].key, K_EMPATHY, gw_empathy_phrases[i].strength,
                      gw_empathy_phrases[i].kind);
  return rc;
}

/* Conversational roles (docs/FEELING_MODEL.md, "Reading a conversation"). A customer who
 * thanks, greets, says goodbye or acknowledges an answer follows a social formula: it says
 * nothing of how they feel. These keys are lexicon entries whose valence the utterance keeps
 * (a tweet that says "thanks" is a friendly tweet), but that a customer turn's felt valence
 * leaves out, negated or not ("no thanks" refuses politely). Hyperbolic gratitude ("can't thank you
 * enough", "you're a lifesaver") and relief are feelings and are not listed. */
static const char *const gw_conv_formulas[] = {
    /* thanking */
    "thanks", "thank", "thank you", "thankyou", "thx", "ty", "ta", "cheers", "many thanks",
    "thank you so much", "thanks so much", "thank you very much", "thanks a lot", "thanks a bunch",
    "thanks a ton", "thanks heaps", "thanks loads", "thanks again", "thank you again",
    "much appreciated", "appreciated", "appreciate", "appreciate it", "i appreciate it",
    "really appreciate it", "appreciate your help", "thanks for your help",
    "thank you for your help", "thanks for the help", "thanks for helping", "🙏",
    "thanks for clarifying", "thanks for confirming", "thank you for confirming",
    /* asking */
    "i'd like", "i would like", "we'd like", "we would like",
    /* greeting and signing off */
    "good morning", "good afternoon", "good evening", "hope you're well", "hope you are well",
    "have a nice day", "have a good day", "have a great day", "have a lovely day",
    "have a good one", "have a nice weekend", "have a good weekend", "have a great weekend",
    "have a lovely weekend", "hope you're doing well", "take care", "bye", "goodbye",
    "kind regards", "best regards", "warm regards", "best wishes", "welcome", "you're welcome",
    /* acknowledging and agreeing */
    "ok", "okay", "alright", "sure", "fine", "yes", "got it", "sounds good", "fair enough",
    "that makes sense", "no problem", "not a problem", "no problem at all", "no worries", "all set",
    "will do",
    /* a customer's apology is courtesy too ("sorry, one more question") */
    "sorry"};

/* Mild approval that acknowledges an answer when it stands alone in its clause, among
 * formulas only ("great, thanks", "perfect.", "ok good"), and is a feeling in a sentence
 * ("this is great"). Strong words ("amazing", "wonderful") are chosen to express a feeling
 * and are not listed. */
static const char *const gw_conv_acks[] = {
    /* words and phrases */
    "good", "great", "perfect", "cool", "nice", "excellent", "best", "all good", "good to go",
    "sounds great", "sounds perfect", "that's great", "that's perfect", "good point", "fair point",
    /* emoji and emoticons */
    "👍", "🙂", ":)", ":-)"};

/* Descriptions of the problem: what is broken, declined, late or missing. Telling the agent
 * what happened is not a feeling ("hi, my card was declined"): these count at a fraction of
 * their valence in a customer turn. How the customer lives the problem keeps its full weight
 * ("still not working", "third time calling", "ridiculous", "worried"). */
static const char *const gw_conv_descriptions[] = {
    /* not working */
    "not working", "isn't working", "is not working", "wasn't working", "stopped working",
    "doesn't work", "does not work", "didn't work", "did not work", "won't work", "broken", "error",
    "error message", "error code", "spinning wheel", "blank screen", "won't load", "doesn't load",
    "not loading", "won't let me", "doesn't let me", "keeps dropping", "keeps crashing", "crash",
    "crashed", "crashing", "bug", "glitch", "outage", "down", "stuck", "failed", "fail", "problem",
    "problems", "issue", "issues", "wrong",
    /* no service, no access */
    "no signal", "no internet", "no service", "cut off", "call dropped", "got disconnected",
    "disconnected", "locked out", "can't log in", "can't login", "cannot log in", "can't access",
    "account locked",
    /* refused, stopped, charged */
    "card declined", "card was declined", "payment failed", "declined", "denied", "rejected",
    "suspended", "cancelled", "canceled", "terminated", "late fee", "extra charge",
    /* late, missing, damaged */
    "delayed", "delay", "late", "missing", "lost", "damaged", "arrived damaged", "wrong item",
    "wrong order", "hasn't arrived", "has not arrived", "didn't arrive", "not delivered",
    "out of stock", "sold out", "on backorder", "can't find", "couldn't find", "where is my",
    "where's my", "what happened to",
    /* things that happened to the customer */
    "stolen", "hacked", "frozen", "accident", "sick", "ill",
    /* asking for help, unsure */
    "i need help", "help me", "please help", "deadline", "as soon as possible", "asap",
    "really need", "urgent", "want a refund", "cancel my order", "cancel my subscription",
    "not sure", "unsure", "hmm", "unfortunately"};

/* Markers that make a whole turn sarcastic: its praise says the opposite. */
static const char *const gw_conv_sarcasm[] = {"🙃",      "🙄", "😒", "😑", "thanks for nothing",
                                              "yeah right"};

static void gw_set_conv(gw_feeling_model *m, const char *k, uint8_t role) {
  char key[GW_PHRASE_KEY_BYTES];
  size_t keylen;
  int symbol;
  if (gw_lex_entry_key(k, strlen(k), key, &keylen, &symbol) <= 0)
    return;
  gw_lex_entry *e = (gw_lex_entry *)gw_lex_find(m, key, keylen);
  if (e && (e->kind & K_SENTIMENT))
    e->conv = role;
}

void gw_lex_set_conv_roles(gw_feeling_model *m) {
  for (size_t i = 0; i < GW_NELEM(gw_conv_formulas); i++)
    gw_set_conv(m, gw_conv_formulas[i], CONV_FORMULA);
  for (size_t i = 0; i < GW_NELEM(gw_conv_acks); i++)
    gw_set_conv(m, gw_conv_acks[i], CONV_ACK);
  for (size_t i = 0; i < GW_NELEM(gw_conv_descriptions); i++)
    gw_set_conv(m, gw_conv_descriptions[i], CONV_DESCRIBE);
  for (size_t i = 0; i < GW_NELEM(gw_conv_sarcasm); i++)
    gw_set_conv(m, gw_conv_sarcasm[i], CONV_SARCASM);
}
