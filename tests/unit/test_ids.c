#include "goodwill/ids.h"
#include "gw_test.h"

static void hex_of(const char *s, char out[GW_ID_HEX_LEN + 1]) {
  gw_id_hasher h;
  gw_id_init(&h);
  gw_id_update(&h, s, strlen(s));
  gw_id_final_hex(&h, out);
}

/* Published FNV-1a 128 test vectors: the empty string is the offset basis, and "a". */
static void test_fnv1a_128_known_vectors(void) {
  char out[GW_ID_HEX_LEN + 1];
  hex_of("", out);
  CHECK_STR_EQ(out, "6c62272e07bb014262b821756295c58d");
  hex_of("a", out);
  CHECK_STR_EQ(out, "d228cb696f1a8caf78912b704e4a8964");
}

static void test_fields_are_separated(void) {
  gw_id_hasher a, b;
  char ha[GW_ID_HEX_LEN + 1], hb[GW_ID_HEX_LEN + 1];
  gw_id_init(&a);
  gw_id_update_field(&a, "ab");
  gw_id_update_field(&a, "c");
  gw_id_init(&b);
  gw_id_update_field(&b, "a");
  gw_id_update_field(&b, "bc");
  gw_id_final_hex(&a, ha);
  gw_id_final_hex(&b, hb);
  CHECK(strcmp(ha, hb) != 0);
}

int main(void) {
  GW_RUN(test_fnv1a_128_known_vectors);
  GW_RUN(test_fields_are_separated);
  return gw_test_finish();
}
