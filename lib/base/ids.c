/* Deterministic identifiers: FNV-1a 128 (gw_hash) over NUL-separated fields (see ids.h). */
#include "goodwill/ids.h"

#include <string.h>

void gw_id_init(gw_id_hasher *h) {
  gw_fnv128_init(&h->fnv);
}

void gw_id_update(gw_id_hasher *h, const void *data, size_t len) {
  gw_fnv128_update(&h->fnv, data, len);
}

void gw_id_update_field(gw_id_hasher *h, const char *s) {
  static const unsigned char sep = 0;
  gw_id_update(h, s, strlen(s));
  gw_id_update(h, &sep, 1);
}

void gw_id_final_hex(const gw_id_hasher *h, char out[GW_ID_HEX_LEN + 1]) {
  static const char digits[] = "0123456789abcdef";
  unsigned __int128 v = h->fnv.state;
  for (int i = GW_ID_HEX_LEN - 1; i >= 0; i--) {
    out[i] = digits[(unsigned)(v & 0xf)];
    v >>= 4;
  }
  out[GW_ID_HEX_LEN] = '\0';
}
