/* Deterministic identifiers: FNV-1a 128 over length-separated fields (see ids.h). */
#include "goodwill/ids.h"

#include <string.h>

/* FNV-128 offset basis 0x6c62272e07bb014262b821756295c58d and prime 2^88 + 2^8 + 0x3b. */
#define GW_FNV128_BASIS_HI 0x6c62272e07bb0142ULL
#define GW_FNV128_BASIS_LO 0x62b821756295c58dULL
#define GW_FNV128_PRIME_HI 0x0000000001000000ULL
#define GW_FNV128_PRIME_LO 0x000000000000013bULL

void gw_id_init(gw_id_hasher *h) {
  h->state = ((unsigned __int128)GW_FNV128_BASIS_HI << 64) | GW_FNV128_BASIS_LO;
}

void gw_id_update(gw_id_hasher *h, const void *data, size_t len) {
  const unsigned __int128 prime =
      ((unsigned __int128)GW_FNV128_PRIME_HI << 64) | GW_FNV128_PRIME_LO;
  const unsigned char *p = data;
  for (size_t i = 0; i < len; i++) {
    h->state ^= p[i];
    h->state *= prime;
  }
}

void gw_id_update_field(gw_id_hasher *h, const char *s) {
  static const unsigned char sep = 0;
  gw_id_update(h, s, strlen(s));
  gw_id_update(h, &sep, 1);
}

void gw_id_final_hex(const gw_id_hasher *h, char out[GW_ID_HEX_LEN + 1]) {
  static const char digits[] = "0123456789abcdef";
  unsigned __int128 v = h->state;
  for (int i = GW_ID_HEX_LEN - 1; i >= 0; i--) {
    out[i] = digits[(unsigned)(v & 0xf)];
    v >>= 4;
  }
  out[GW_ID_HEX_LEN] = '\0';
}
