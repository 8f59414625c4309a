#ifndef TORPOR_CLIBCRYPTO_SHIM_H
#define TORPOR_CLIBCRYPTO_SHIM_H

#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/crypto.h>

/* OSSL_PARAM arrays are awkward to build from Swift; these wrappers keep the
 * parameter plumbing in C and leave Swift with plain pointers and lengths. */

/* Sets the digest of a fresh HMAC context to SHA-256. Returns 1 on success. */
static inline int torpor_hmac_set_sha256(EVP_MAC_CTX *ctx) {
    OSSL_PARAM params[2];
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    return EVP_MAC_CTX_set_params(ctx, params);
}

/* One HMAC-SHA256 over a context whose digest is already set: init with the
 * key, update, final. Writes 32 bytes to out. Returns 1 on success. */
static inline int torpor_hmac_sha256(EVP_MAC_CTX *ctx,
                                     const unsigned char *key, size_t key_len,
                                     const unsigned char *data, size_t data_len,
                                     unsigned char *out) {
    size_t out_len = 0;
    if (EVP_MAC_init(ctx, key, key_len, NULL) != 1) return 0;
    if (EVP_MAC_update(ctx, data, data_len) != 1) return 0;
    if (EVP_MAC_final(ctx, out, &out_len, 32) != 1) return 0;
    return out_len == 32;
}

/* One SHA-256 over a reusable digest context and a digest fetched once. */
static inline int torpor_sha256(EVP_MD_CTX *ctx, const EVP_MD *md,
                                const unsigned char *data, size_t data_len,
                                unsigned char *out) {
    unsigned int out_len = 0;
    if (EVP_DigestInit_ex2(ctx, md, NULL) != 1) return 0;
    if (EVP_DigestUpdate(ctx, data, data_len) != 1) return 0;
    if (EVP_DigestFinal_ex(ctx, out, &out_len) != 1) return 0;
    return out_len == 32;
}

/* HMAC-SHA256 with the key's inner and outer pads hashed once in advance.
 * A SigV4 signing key is used for a whole day, so each signature then costs
 * two context copies and the message blocks, instead of re-keying.
 * Prepare: inner and outer must be fresh contexts; key_len <= 64. */
static inline int torpor_hmac_prepare(const EVP_MD *md, const unsigned char *key, size_t key_len,
                                      EVP_MD_CTX *inner, EVP_MD_CTX *outer) {
    unsigned char ipad[64], opad[64];
    size_t i;
    if (key_len > 64) return 0;
    for (i = 0; i < 64; i++) {
        unsigned char k = i < key_len ? key[i] : 0;
        ipad[i] = k ^ 0x36;
        opad[i] = k ^ 0x5c;
    }
    if (EVP_DigestInit_ex2(inner, md, NULL) != 1 || EVP_DigestUpdate(inner, ipad, 64) != 1) return 0;
    if (EVP_DigestInit_ex2(outer, md, NULL) != 1 || EVP_DigestUpdate(outer, opad, 64) != 1) return 0;
    return 1;
}

/* Reads inner and outer only, so many threads may share one prepared key. */
static inline int torpor_hmac_prepared(EVP_MD_CTX *work, const EVP_MD_CTX *inner, const EVP_MD_CTX *outer,
                                       const unsigned char *data, size_t data_len, unsigned char *out) {
    unsigned char inner_hash[32];
    unsigned int len = 0;
    if (EVP_MD_CTX_copy_ex(work, inner) != 1) return 0;
    if (EVP_DigestUpdate(work, data, data_len) != 1) return 0;
    if (EVP_DigestFinal_ex(work, inner_hash, &len) != 1 || len != 32) return 0;
    if (EVP_MD_CTX_copy_ex(work, outer) != 1) return 0;
    if (EVP_DigestUpdate(work, inner_hash, 32) != 1) return 0;
    if (EVP_DigestFinal_ex(work, out, &len) != 1) return 0;
    return len == 32;
}

#endif
